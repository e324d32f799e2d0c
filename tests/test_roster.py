"""Loading a roster: every accepted format, joins on the user id, bad rows reported without values."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from anonymizer.core.keys import Key
from anonymizer.core.pseudonyms import Pseudonymizer
from anonymizer.core.roster import RosterError, load_roster

OBFUSCATION = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "edx-analytics-pipeline" / "input" / "obfuscation"
needs_corpus = pytest.mark.corpus
SECRET = "QXsecret-value"  # a value that must never appear in a report


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_a_csv_with_a_header_gives_one_person_per_row(tmp_path):
    path = write(tmp_path / "people.csv", "id,username,email,name\n7,zelda-q,zelda@example.com,Zelda Quintero\n8,mateo_gn,,Mateo García\n")
    roster, report = load_roster([path])
    assert [(p.id, p.username, p.email, p.name) for p in roster.people] == [
        ("7", "zelda-q", "zelda@example.com", "Zelda Quintero"),
        ("8", "mateo_gn", None, "Mateo García"),
    ]
    assert report.bad == 0


def test_header_names_are_found_in_any_order_and_case_and_other_columns_are_ignored(tmp_path):
    path = write(tmp_path / "people.csv", "Name,Country,USERNAME,Id\nZelda Quintero,ES,zelda-q,7\n")
    roster, _ = load_roster([path])
    assert (roster.people[0].id, roster.people[0].username, roster.people[0].name) == ("7", "zelda-q", "Zelda Quintero")


def test_a_csv_field_may_hold_quotes_and_commas(tmp_path):
    path = write(tmp_path / "people.csv", 'username,name\nzelda-q,"Quintero, Zelda ""Z"""\n')
    roster, _ = load_roster([path])
    assert roster.people[0].name == 'Quintero, Zelda "Z"'


def test_a_tsv_auth_user_export_with_a_header_is_read(tmp_path):
    path = write(
        tmp_path / "edX-auth_user-prod-analytics.sql",
        "id\tusername\tfirst_name\tlast_name\temail\tis_staff\n418207\t_ymir_balder77_\tØyvind\tÆrø\toyvind@example.no\t0\n",
    )
    roster, _ = load_roster([path])
    person = roster.people[0]
    assert (person.id, person.username, person.email, person.name) == ("418207", "_ymir_balder77_", "oyvind@example.no", "Øyvind Ærø")


def test_auth_userprofile_is_keyed_on_user_id_not_on_its_own_id(tmp_path):
    users = write(tmp_path / "auth_user.tsv", "id\tusername\temail\n418207\t_ymir_\tx@example.no\n")
    profiles = write(tmp_path / "auth_userprofile.tsv", "id\tuser_id\tname\tgender\n1\t418207\tØyvind Ærø\tm\n")
    roster, _ = load_roster([users, profiles])
    assert len(roster) == 1
    assert (roster.people[0].username, roster.people[0].name) == ("_ymir_", "Øyvind Ærø")


def test_rows_of_several_files_are_joined_on_the_user_id(tmp_path):
    first = write(tmp_path / "a.csv", "id,username\n7,zelda-q\n8,mateo_gn\n")
    second = write(tmp_path / "b.csv", "user_id,email,name\n7,zelda@example.com,Zelda Quintero\n")
    roster, report = load_roster([first, second])
    assert [(p.id, p.username, p.email, p.name) for p in roster.people] == [
        ("7", "zelda-q", "zelda@example.com", "Zelda Quintero"),
        ("8", "mateo_gn", None, None),
    ]
    assert report.people == 2


def test_a_person_keeps_every_username_and_email_the_files_give(tmp_path):
    first = write(tmp_path / "a.csv", "id,email\n7,old@example.com\n")
    second = write(tmp_path / "b.csv", "id,email\n7,new@example.com\n")
    roster, _ = load_roster([first, second])
    assert roster.people[0].emails == ("old@example.com", "new@example.com")


def test_headerless_x01_auth_user_and_auth_userprofile_exports_are_read(tmp_path):
    users = write(tmp_path / "auth_user", "4\x01staff\x012014-01-01 00:00:00.0\x012012-01-01 00:00:00.0\x01true\x01false\x01true\x01staff@example.com\n")
    profiles = write(tmp_path / "auth_userprofile", "4\x01staff_first staff_last\x01m\x011993\x01hs\n")
    roster, report = load_roster([users, profiles])
    person = roster.people[0]
    assert (person.id, person.username, person.email, person.name) == ("4", "staff", "staff@example.com", "staff_first staff_last")
    assert [f.format for f in report.files] == ["auth_user (\\x01)", "auth_userprofile (\\x01)"]


def test_a_headerless_export_is_recognised_by_its_shape_when_its_name_says_nothing(tmp_path):
    users = write(tmp_path / "part-00000", "4\x01staff\x012014-01-01 00:00:00.0\x012012-01-01 00:00:00.0\x01true\x01false\x01true\x01s@example.com\n")
    profiles = write(tmp_path / "part-00001", "4\x01Staff Member\x01m\x011993\x01hs\n")
    roster, _ = load_roster([users, profiles])
    assert (roster.people[0].username, roster.people[0].name) == ("staff", "Staff Member")


@needs_corpus
def test_the_corpus_obfuscation_exports_load_as_four_people():
    roster, report = load_roster([OBFUSCATION / "auth_user", OBFUSCATION / "auth_userprofile"])
    assert sorted((p.id, p.username, p.name) for p in roster.people) == [
        ("1", "honor", "honor_first honor_last"),
        ("2", "audit", "audit_first audit_last"),
        ("3", "verified", "verified_first verified_last"),
        ("4", "staff", "staff_first staff_last"),
    ]
    assert report.bad == 0


def test_bad_rows_are_skipped_and_reported_by_file_line_and_reason(tmp_path):
    path = write(
        tmp_path / "people.csv",
        f"id,username,name\n7,zelda-q,Zelda\nQX12,{SECRET},Someone\n9,too,many,fields\n\n,NULL,\n10,mateo_gn,Mateo\n",
    )
    roster, report = load_roster([path])
    assert [p.username for p in roster.people] == ["zelda-q", "mateo_gn"]
    assert [(bad.file, bad.line, bad.reason) for bad in report.bad_rows] == [
        ("people.csv", 3, "the user id is not a whole number"),
        ("people.csv", 4, "expected 3 fields, found 4"),
        ("people.csv", 6, "no id, username, email or name"),
    ]


def test_a_report_never_repeats_a_value_from_the_roster(tmp_path):
    path = write(tmp_path / "people.tsv", f"id\tusername\tname\nQX{SECRET}\t{SECRET}\t{SECRET}\n7\t{SECRET}\n")
    _, report = load_roster([path])
    text = "\n".join(report.describe())
    assert report.bad == 2
    assert "QX" not in text and SECRET not in text


def test_a_row_with_invalid_utf8_is_a_bad_row(tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(b"id,username\n7,zelda-q\n8,caf\xe9\n")
    roster, report = load_roster([path])
    assert [p.username for p in roster.people] == ["zelda-q"]
    assert [(bad.line, bad.reason) for bad in report.bad_rows] == [(3, "not valid UTF-8")]


def test_null_markers_of_database_exports_are_empty_values(tmp_path):
    path = write(tmp_path / "auth_user.tsv", "id\tusername\temail\n7\tzelda-q\tNULL\n")
    roster, _ = load_roster([path])
    assert roster.people[0].emails == ()


def test_a_file_without_a_known_header_is_refused_with_what_was_expected(tmp_path):
    path = write(tmp_path / "people.csv", f"{SECRET},{SECRET}\n1,2\n")
    with pytest.raises(RosterError) as caught:
        load_roster([path])
    message = str(caught.value)
    assert "username, email, name" in message and SECRET not in message


def test_a_missing_roster_file_is_a_usage_error(tmp_path):
    with pytest.raises(RosterError) as caught:
        load_roster([tmp_path / "nope.csv"])
    assert caught.value.exit_code == 2


def test_an_unrecognisable_x01_export_is_refused(tmp_path):
    path = write(tmp_path / "export", "1\x012\x013\n")
    with pytest.raises(RosterError, match="auth_user"):
        load_roster([path])


def test_people_are_found_by_username_exactly_then_ignoring_case_then_by_email(tmp_path):
    path = write(tmp_path / "people.csv", "id,username,email\n7,Zelda-Q,zelda@example.com\n")
    roster, _ = load_roster([path])
    person = roster.people[0]
    assert roster.person_for("Zelda-Q") is person
    assert roster.person_for("zelda-q") is person
    assert roster.person_for("ZELDA@example.com") is person
    assert roster.person_for("someone-else") is None


def test_usernames_that_differ_only_in_case_are_not_guessed_between(tmp_path):
    path = write(tmp_path / "people.csv", "id,username\n7,Zelda\n8,zelda\n")
    roster, _ = load_roster([path])
    assert roster.person_for("Zelda").id == "7"
    assert roster.person_for("zelda").id == "8"
    assert roster.person_for("ZELDA") is None


def test_the_fingerprint_is_keyed_and_ignores_file_order(tmp_path):
    first = write(tmp_path / "a.csv", "id,username\n7,zelda-q\n")
    second = write(tmp_path / "b.csv", "id,name\n7,Zelda Quintero\n")
    one, _ = load_roster([first, second])
    two, _ = load_roster([second, first])
    key, other = Pseudonymizer(Key(b"a" * 32)), Pseudonymizer(Key(b"b" * 32))
    assert one.fingerprint(key) == two.fingerprint(key)
    assert one.fingerprint(key) != one.fingerprint(other)


def test_the_summary_names_files_and_counts_people_but_holds_no_person(tmp_path):
    path = write(tmp_path / "people.csv", "id,username,name\n7,zelda-q,Zelda Quintero\n")
    roster, _ = load_roster([path])
    summary = roster.summary(Pseudonymizer(Key(b"a" * 32)))
    assert summary["files"] == ["people.csv"] and summary["people"] == 1
    assert "zelda" not in repr(summary).lower()


def test_a_roster_pickles_as_its_people(tmp_path):
    path = write(tmp_path / "people.csv", "id,username,name\n7,zelda-q,Zelda Quintero\n")
    roster, _ = load_roster([path])
    copy = pickle.loads(pickle.dumps(roster))
    assert copy.people == roster.people and copy.person_for("zelda-q").id == "7"
