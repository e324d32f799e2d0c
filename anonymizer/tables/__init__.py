"""The platform's side tables (auth_user, auth_userprofile, enrollments, studentmodule, certificates,
user-id maps), anonymized with the events' operators and pseudonyms: ``anonymizer tables``."""
