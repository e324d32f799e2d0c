#!/usr/bin/env python3
"""Generate synthetic Open edX tracking logs for tests and benchmarks.

Every person, course and sentence here is invented; the shapes follow the platform's
on-disk format (edx-platform's tracking logger, ``json.dumps`` with its default
separators and ``ensure_ascii``). Output is a pure function of the arguments: the same
arguments give byte-identical files, whatever ``--jobs`` is.

    python bench/generate.py --events 1000000 --seed 7 --out big.log \\
        --roster-out roster.csv --planted-out planted.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing
import os
import sys
import time
import unicodedata
from bisect import bisect
from datetime import datetime, timezone
from random import Random
from urllib.parse import quote, quote_plus

CHUNK_EVENTS = 5_000
START_TIME = 1_709_251_200.0  # 2024-03-01T00:00:00Z
PII_RATE = 0.30  # share of free-text fields carrying planted personal data
LOOKALIKE_RATE = 0.20  # share of free-text fields carrying text that must survive
MALFORMED_RATE = 0.002
RAW_UTF8_RATE = 0.01  # lines re-encoded by a log shipper without \u escapes
CONCURRENT_BURSTS = 12  # interleaved sessions, so consecutive lines are different people

# The platform's implicit-event middleware cuts the JSON-encoded payload here.
IMPLICIT_PAYLOAD_LIMIT = 512
FORUM_BODY_LIMIT = 2000

HOST = "courses.northwind.edu"
# Micro-frontends served under one apps host, as many Open edX installations do.
MFE_HOST = "apps.northwind.edu/learning"
PROFILE_HOST = "apps.northwind.edu/profile"
ACCOUNT_HOST = "apps.northwind.edu/account"

# --------------------------------------------------------------------------- people

FIRST_NAMES = (
    "Aaliyah Abdul Adaeze Adrián Ahmed Aiko Alejandro Alexandra Ali Amara Amir Ana Anders Andrea "
    "Aniket Anna Arjun Astrid Aylin Bao Beatriz Benjamin Björn Bongani Camille Carlos Chen Chiara "
    "Chidi Chloé Daniel David Deepika Diego Dmitri Elif Elena Emeka Emily Emma Eun-ji Fatima Felipe "
    "Finn François Gabriel Giulia Hana Hannah Hamza Hiroshi Ibrahim Ingrid Isabela Ivan Jakub James "
    "Jana Javier Jia Jin-woo João Jonas Jorge José Julia Kai Kalani Karim Katarzyna Kenji Kofi Laila "
    "Lars Layla Leila Liam Lina Lucas Łukasz Mai Maria Mariam Marta Mateo Mehmet Mei Mia Miguel "
    "Mohammed Nadia Naledi Nikhil Nina Noah Nour Oliver Olga Omar Oscar Paolo Pedro Pooja Priya Rafael "
    "Rahul Ravi Renée Rin Rosa Ruth Sakura Samuel Sara Sebastián Seo-yeon Siobhán Sofia Søren Svetlana "
    "Tariq Thabo Thomas Tomás Valentina Vikram Wei Xin Yasmin Yerlan Yusuf Zainab Zanele Zoë Øyvind "
    "Ærwyn Dagný Þóra Ngozi Oluwaseun Tatiana Ahanu Kwame"
).split()

# Deliberately no Mark, Joy, Will, May, Grace or Hope: the look-alike phrases below use
# those words, and they must stay unambiguous for tests.
LAST_NAMES = (
    "Abebe Adeyemi Ahmed Alvarez Andersen Bakker Banerjee Becker Bianchi Chen Choi Costa Cruz "
    "Dubois Dumont Eriksen Fernández Fischer García Gonzalez Gupta Haddad Hansen Hernández "
    "Hoffmann Ivanova Jansen Jensen Johansson Kaya Kim Kowalski Kumar Larsen Lee Li Lindqvist López "
    "Martínez Mensah Moreau Müller Nakamura Nguyen Novak Nowak Okafor Okonkwo Olsen Park Pereira "
    "Petrov Popescu Rahman Reddy Rossi Sato Schmidt Schneider Singh Smith Suzuki Tanaka Tran "
    "Wang Watanabe Weber Wójcik Yamamoto Yilmaz Zhang Ærø Østergaard Þórsdóttir Nyström Kovačević "
    "Papadopoulos Mbeki Achebe Castillo Ferreira Iyer Nair Chatterjee Osei Boateng Mwangi Kariuki"
).split() + ["O'Brien", "O'Connor", "da Silva", "D'Angelo", "McAllister", "van der Berg", "de la Cruz",
             "Smith-Jones", "Lloyd-Webber", "García Márquez", "Al-Farsi", "Ben-David"]

# Names written without spaces in their own script: word-boundary scrubbers miss them.
CJK_NAMES = ("王芳", "李娜", "张伟", "刘洋", "陈静", "山田太郎", "佐藤花子", "김민준", "이서연")

# Transliterations for e-mail local parts, where providers only accept ASCII.
ASCII_FOLD = str.maketrans({
    "Ø": "O", "ø": "o", "Æ": "Ae", "æ": "ae", "Þ": "Th", "þ": "th", "Ð": "D", "ð": "d",
    "Ł": "L", "ł": "l", "ß": "ss", "'": "", " ": "",
})

EMAIL_DOMAINS = (
    ("gmail.com", 40), ("outlook.com", 10), ("yahoo.com", 8), ("hotmail.co.uk", 4),
    ("web.de", 3), ("qq.com", 4), ("naver.com", 2), ("icloud.com", 5), ("proton.me", 2),
    ("student.meridian-univ.edu", 8), ("northwind.edu", 2), ("mail.ru", 2),
    ("uni-heidelberg.example.de", 2), ("ntnu.example.no", 1),
)

ACCEPT_LANGUAGES = (
    "en-US,en;q=0.9", "en-US,en;q=0.5", "en-GB,en;q=0.9", "en-GB,en-US;q=0.9,en;q=0.8",
    "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "es-419,es;q=0.9", "es-ES,es;q=0.9,en;q=0.8",
    "de-DE,de;q=0.9,en;q=0.8", "pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7", "zh-CN,zh;q=0.9",
    "hi-IN,hi;q=0.9,en-IN;q=0.8,en;q=0.7", "nb-NO,nb;q=0.9,no;q=0.8,nn;q=0.7,en-US;q=0.6,en;q=0.5",
    "ar,en-US;q=0.9,en;q=0.8", "ja,en-US;q=0.9,en;q=0.8", "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7",
    "tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7", "en-US;q=1.0, en;q=0.8", "en", "",
)

BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.105 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_7_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 OPR/108.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.119 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
)

# (agent, application name, os name, os version, manufacturer, model)
MOBILE_DEVICES = (
    ("edX/org.edx.mobile (4.13.0; OS Version 17.3.1 (Build 21D61))", "edx.mobileapp.iOS", "iOS", "17.3.1", "Apple", "iPhone14,5"),
    ("edX/org.edx.mobile (4.12.1; OS Version 16.7.5 (Build 20H307))", "edx.mobileapp.iOS", "iOS", "16.7.5", "Apple", "iPhone12,1"),
    ("Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014) edX/org.edx.mobile/4.0.2", "edx.mobileapp.android", "Android", "13", "samsung", "SM-A536B"),
    ("Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240205.002) edX/org.edx.mobile/4.0.2", "edx.mobileapp.android", "Android", "14", "Google", "Pixel 7"),
    ("Dalvik/2.1.0 (Linux; U; Android 11; Redmi Note 8 Pro MIUI/V12.5.4.0.RGGMIXM) edX/org.edx.mobile/3.3.1", "edx.mobileapp.android", "Android", "11", "Xiaomi", "Redmi Note 8 Pro"),
)

# --------------------------------------------------------------------------- text

PROSE = (
    "I think the key idea in this unit is that the sample mean is itself a random variable.",
    "Can someone explain why the confidence interval gets wider when we ask for 99% instead of 95%?",
    "The second lecture video was much clearer than the reading for me.",
    "I got stuck on the third part of the homework and I am not sure what the question expects.",
    "My answer matched the worked example, but the grader still marked it as incorrect.",
    "It helped to draw the recursion tree before writing any code.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The treaty was signed in a hurry, and historians still argue about who benefited most.",
    "I rewatched the segment on gradient descent three times before it clicked.",
    "Does the final exam cover the optional readings as well?",
    "In my country we learn this topic with a completely different notation.",
    "The example with the coin flips made the law of large numbers feel intuitive.",
    "I work full time, so I usually study late in the evening after my kids are asleep.",
    "Is there a transcript for the guest lecture? The audio is quite hard to follow.",
    "We should be careful not to confuse correlation with causation here.",
    "The list comprehension version is shorter, but the loop is easier to debug.",
    "I disagree with the author's conclusion, because the data only covers two years.",
    "Mitochondria have their own DNA, which supports the endosymbiotic theory.",
    "This discussion board has been the most useful part of the course so far.",
    "My solution runs in linear time if we keep a dictionary of the values we have already seen.",
    "The printing press changed who could take part in political debate.",
    "Could the staff post an extra practice problem on conditional probability?",
    "I tried the exercise in a notebook first and then pasted the final expression.",
    "English is my third language, so sorry if this question is unclear.",
    "The key is to convert everything to the same units before comparing.",
    "Enzymes lower the activation energy without being consumed by the reaction.",
    "I found a small typo in the slides for week four: the exponent should be negative.",
    "Our study group meets online every Sunday; anyone is welcome to join.",
    "The peer review rubric asks for evidence, so I added two sources from the library.",
    "When the p-value is small, we reject the null hypothesis, but that does not prove the alternative.",
    "I appreciated how the instructor connected the theory to real hospital data.",
    "The map of trade routes made the economic argument much easier to follow.",
    "Binary search only works because the list is sorted first.",
    "I am retaking this course after failing the exam last year, and it makes more sense now.",
    "The video player keeps buffering on my phone, but it works fine on my laptop.",
    "Great question! I had exactly the same doubt when I started this module.",
    "My essay argues that urban planning decisions in the 1960s still shape commuting patterns.",
    "I used a simple simulation with ten thousand trials to check the analytical result.",
    "The cell membrane is selectively permeable, which is why osmosis happens at all.",
    "The reading compares two economic models, and the second one assumes perfect information.",
    "Thank you to everyone who answered, this thread saved me hours.",
    "I was not able to submit before the deadline because of a power cut in our area.",
    "Unit tests caught a bug in my edge case where the list was empty.",
    "The difference between a variable and its value finally makes sense to me.",
    "Is it acceptable to cite lecture notes in the written assignment?",
    "Honestly the pacing of this week felt rushed compared to the first three.",
    "Plotting the residuals showed a clear pattern, so the linear model is not a good fit.",
    "Each generation of the algorithm keeps the fittest half of the population.",
    "The archive documents show that the decision was debated for months.",
    "I summarised the chapter in a mind map and it helped me remember the dates.",
)

TITLES = (
    "Question about the week 3 homework", "Confused by confidence intervals", "Study group for the final",
    "Grader marks correct answer wrong?", "Typo in lecture slides", "Recursion explained simply",
    "Introductions thread", "Peer assessment feedback", "Video not loading on mobile",
    "Extra practice problems", "Help with problem set 2", "Deadline extension request",
    "Interesting article related to unit 5", "Is the exam open book?", "Solution approach comparison",
)

SEARCH_TERMS = (
    "confidence interval", "recursion", "deadline", "exam", "p-value", "photosynthesis",
    "list comprehension", "grading policy", "certificate", "transcript", "week 4 quiz",
    "binary search", "mitochondria", "treaty", "peer review", "office hours",
)

# Text that looks like personal data but is not; a good scrubber leaves it alone.
LOOKALIKES = (
    "Mark my words, this will be on the final.",
    "This course really captures the Joy of learning.",
    "I am on Python 3.11.2 with numpy 1.26.4 and it works.",
    "The deadline moved to 2024-03-15, so we have two more weeks.",
    "The textbook costs $49.99 in the shop, or 45,00 EUR in Europe.",
    "Section 2.3.1 explains the derivation step by step.",
    "Avogadro's number is about 6.022e23, not 6.022e-23.",
    "Will the grades be released in May?",
    "The answer for part b is 1024 bytes, which is 2^10.",
    "The lecture at 14:30 on 12/03/2024 was moved online.",
)

QUESTIONS = (
    "What is the probability of drawing two aces in a row without replacement?",
    "Which of the following statements about the sampling distribution are true?",
    "Enter the derivative of x^2 + 3x.",
    "What color is the open ocean on a sunny day?",
    "Which organelle is known as the powerhouse of the cell?",
    "In one or two sentences, explain why the experiment needs a control group.",
    "Which year did the treaty come into force?",
    "What is the time complexity of binary search?",
    "Describe one limitation of the model discussed in this unit.",
    "Select all the musical instruments.",
)

CHOICE_TEXTS = ("a piano", "a guitar", "a table", "a chair", "yellow", "blue", "green",
                "mitochondria", "ribosome", "O(log n)", "O(n)", "O(n^2)", "1648", "1713", "1815")
SHORT_ANSWERS = ("3.14", "2*x+3", "0.0045", "x^2+1", "photosynthesis", "1713", "O(log n)", "42",
                 "mitochondrion", "sqrt(2)/2", "1/221", "blue", "n log n")

INPUT_TYPES = {"multiplechoiceresponse": "choicegroup", "choiceresponse": "checkboxgroup",
               "optionresponse": "optioninput"}
TEXT_RESPONSES = ("stringresponse", "numericalresponse", "customresponse")
SETTING_TABLES = {"email": "auth_user", "is_active": "auth_user", "pref-lang": "user_api_userpreference"}

COMPONENT_NAMES = ("Introduction", "Worked example", "Check your understanding", "Lecture",
                   "Practice problems", "Reading", "Discussion", "Summary", "Lab", "Quiz")

# --------------------------------------------------------------------------- helpers


def hex32(rng: Random) -> str:
    """Return 32 lowercase hex digits, the platform's block and session id shape."""
    return f"{rng.getrandbits(128):032x}"


def hex24(rng: Random) -> str:
    """Return a MongoDB ObjectId-like 24-hex id (forum threads and comments)."""
    return f"{rng.getrandbits(96):024x}"


def uuid4(rng: Random) -> str:
    """Return a random UUID string from rng (uuid.uuid4 would not be reproducible)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def iso_time(ts: float) -> str:
    """Format like the platform: ISO 8601, microseconds always, +00:00 offset."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds")


def cumulative(weights) -> list[float]:
    """Return running totals for bisect-based weighted choice."""
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def weighted(rng: Random, items, cum) -> object:
    """Pick from items using precomputed cumulative weights."""
    return items[bisect(cum, rng.random() * cum[-1])]


def js(obj) -> str:
    """Encode as the browser does (JSON.stringify: compact, no escaping of non-ASCII)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def py_json(obj) -> str:
    """Encode as the Python side of the platform does (json.dumps defaults)."""
    return json.dumps(obj)


# --------------------------------------------------------------------------- the world


class Person:
    """A roster entry; actors additionally get devices and addresses."""

    __slots__ = ("index", "id", "username", "email", "name", "first", "phone", "ips",
                 "agent", "mobile", "lang", "client_id", "device_id")

    def __init__(self, index, user_id, username, email, name, first, phone):
        self.index, self.id, self.username = index, user_id, username
        self.email, self.name, self.first, self.phone = email, name, first, phone
        self.ips = self.agent = self.mobile = self.lang = self.client_id = self.device_id = None


def phone_number(rng: Random) -> str:
    """A phone number in one of the formats that simple US-centric regexes miss."""
    def d(n: int) -> str:
        return f"{rng.randrange(10 ** n):0{n}d}"

    fmt = rng.randrange(12)
    if fmt == 0:
        return f"{rng.randrange(201, 990)}.{d(3)}.{d(4)}"
    if fmt == 1:
        return f"(0{rng.randrange(2, 9)}) {d(3)} {d(4)}"
    if fmt == 2:
        return f"0300 {d(3)} {d(4)}"
    if fmt == 3:
        return f"010-{d(4)}-{d(4)}"
    if fmt == 4:
        return f"+44 20 {d(4)} {d(4)}"
    if fmt == 5:
        return f"({rng.randrange(201, 990)}) 555-{d(4)}"
    if fmt == 6:
        return f"+1 {rng.randrange(201, 990)}-{d(3)}-{d(4)}"
    if fmt == 7:
        return f"+49 30 {d(8)}"
    if fmt == 8:
        return f"+91 {d(5)} {d(5)}"
    if fmt == 9:
        return f"07{d(3)} {d(6)}"
    if fmt == 10:
        return f"+47 {d(3)} {d(2)} {d(3)}"
    return f"{rng.randrange(201, 990)}-{d(3)}-{d(4)}"


def public_ipv4(rng: Random) -> str:
    """A plausible client address: mostly public, a few behind private NAT ranges."""
    if rng.random() < 0.03:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    while True:
        a, b, c, d = rng.getrandbits(32).to_bytes(4, "big")
        if 0 < a < 224 and a not in (10, 100, 127, 169, 172, 192) and 0 < d < 255:
            return f"{a}.{b}.{c}.{d}"


def ipv6(rng: Random) -> str:
    """A global unicast IPv6 address in the usual compressed form."""
    prefix = rng.choice(("2a02:c7c", "2001:db8", "2603:8000", "2409:4042", "2a01:e0a", "2600:1700"))
    groups = ":".join(f"{rng.getrandbits(16):x}" for _ in range(4))
    return f"{prefix}:{rng.getrandbits(16):x}::{groups}" if rng.random() < 0.5 else \
        f"{prefix}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}:{groups}"


def ascii_fold(text: str) -> str:
    """Strip accents and transliterate the letters NFKD leaves alone (Ø, Æ, Þ, Ł ...)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(ASCII_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def make_username(rng: Random, first: str, last: str) -> str:
    """A username in one of the styles learners pick, including edge characters."""
    f = "".join(ch for ch in ascii_fold(first) if ch.isascii() and ch.isalnum()) or "user"
    s = "".join(ch for ch in ascii_fold(last) if ch.isascii() and ch.isalnum()) or "learner"
    n = rng.randrange(1, 9999)
    styles = (
        f"{f[0]}{s}".lower(), f"{f}_{s}{n % 100}".lower(), f"{f}{s}", f"{f.lower()}{n}",
        f"{f}-{s}".lower(), f"{f}_{s}".lower()[:30], f"{f[:3]}{s[:3]}{n % 1000}".lower(),
        f"{s}{f[0]}{n % 10}", f"{f.lower()}_{1970 + n % 38}", f"learner{n}",
        # Leading and trailing _ or - defeat \b-based username scrubbers.
        f"_{f.lower()}_", f"{s.lower()}_", f"-{f.lower()}{n % 100}", f"{f.lower()}-",
    )
    return styles[rng.randrange(len(styles))]


def build_roster(rng: Random, size: int) -> list[Person]:
    """Build `size` people with unique usernames and emails and ascending integer ids."""
    domains = [d for d, _ in EMAIL_DOMAINS]
    dom_cum = cumulative(w for _, w in EMAIL_DOMAINS)
    people, taken_users, taken_emails = [], set(), set()
    # Early accounts (staff, admins) have tiny ids, like real installations.
    user_id = 2
    for index in range(size):
        if index < 20:
            user_id += rng.randrange(1, 4)
        else:
            user_id += rng.randrange(1, 60)
        if rng.random() < 0.02:
            name = rng.choice(CJK_NAMES)
            first = name
            first_ascii, last_ascii = f"u{user_id}", "cn"
        else:
            first = rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            if rng.random() < 0.06:
                last = f"{last}-{rng.choice(LAST_NAMES)}"
            middle = f" {rng.choice(FIRST_NAMES)}" if rng.random() < 0.08 else ""
            name = f"{first}{middle} {last}"
            first_ascii, last_ascii = first, last
        username = make_username(rng, first_ascii, last_ascii)
        while username in taken_users:
            username = f"{username.rstrip('_-')}{rng.randrange(10, 999)}"
        taken_users.add(username)
        local_first = ascii_fold(first_ascii).lower()
        local_last = ascii_fold(last_ascii).lower().replace("-", "")
        local = rng.choice((f"{local_first}.{local_last}", f"{local_first[0]}{local_last}",
                            username.strip("_-").replace("_", "."), f"{local_first}{rng.randrange(1, 99)}"))
        local = "".join(ch for ch in local if ch.isascii() and (ch.isalnum() or ch in "._")).strip(".")
        email = f"{local or 'learner'}@{weighted(rng, domains, dom_cum)}"
        while email in taken_emails:
            email = f"{local}{rng.randrange(100, 999)}@{weighted(rng, domains, dom_cum)}"
        taken_emails.add(email)
        people.append(Person(index, user_id, username, email, name, first, phone_number(rng)))
    return people


class Course:
    """One course run with its blocks; knows how the platform spells its keys."""

    def __init__(self, rng: Random, org: str, code: str, run: str, legacy: bool):
        self.org, self.code, self.run, self.legacy = org, code, run, legacy
        self.id = f"{org}/{code}/{run}" if legacy else f"course-v1:{org}+{code}+{run}"
        self.sequences = []  # (chapter hex, sequential hex, [vertical hex])
        self.problems, self.videos, self.oras, self.polls, self.dnds = [], [], [], [], []
        self.discussions = [f"{rng.getrandbits(160):040x}" for _ in range(8)]
        self.categories = ["General", "Week 1 / Lecture", "Week 2 / Problem Set", "Course Q&A",
                           "Technical Issues", "Study Groups"]
        self.textbooks = [f"/asset-v1:{org}+{code}+{run}+type@asset+block/Unit_{i}.pdf" for i in range(1, 5)]
        self.version = f"{rng.getrandbits(96):024x}"
        for _ in range(rng.randrange(6, 10)):
            chapter = hex32(rng)
            for _ in range(rng.randrange(3, 6)):
                verticals = [hex32(rng) for _ in range(rng.randrange(2, 8))]
                seq = (chapter, hex32(rng), verticals)
                self.sequences.append(seq)
                for _ in range(rng.randrange(1, 3)):
                    self.problems.append(self._problem(rng, seq))
                self.videos.append((hex32(rng), seq, "".join(rng.choice(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(11)),
                    float(rng.randrange(90, 1500)), rng.choice(COMPONENT_NAMES)))
        for _ in range(3):
            self.oras.append((hex32(rng), rng.choice(self.sequences)))
            self.polls.append((hex32(rng), rng.choice(self.sequences)))
            self.dnds.append((hex32(rng), rng.choice(self.sequences)))

    @staticmethod
    def _problem(rng: Random, seq) -> dict:
        inputs = []
        for n in range(2, 2 + rng.choice((1, 1, 1, 2, 2, 3))):
            kind = rng.choice(("multiplechoiceresponse", "choiceresponse", "optionresponse",
                               "stringresponse", "numericalresponse", "customresponse"))
            inputs.append((n, kind, rng.choice(QUESTIONS)))
        return {"hex": hex32(rng), "seq": seq, "inputs": inputs, "name": rng.choice(COMPONENT_NAMES)}

    def usage(self, block_type: str, block: str) -> str:
        if self.legacy:
            return f"i4x://{self.org}/{self.code}/{block_type}/{block}"
        return f"block-v1:{self.org}+{self.code}+{self.run}+type@{block_type}+block@{block}"

    def url_usage(self, block_type: str, block: str) -> str:
        """The usage key as it appears in handler URL paths."""
        if self.legacy:
            return f"i4x:;_;_{self.org};_{self.code};_{block_type};_{block}"
        return self.usage(block_type, block)

    def input_id(self, block: str, n: int) -> str:
        if self.legacy:
            return f"i4x-{self.org}-{self.code}-problem-{block}_{n}_1"
        return f"{block}_{n}_1"

    def handler(self, block_type: str, block: str, name: str) -> str:
        return f"/courses/{self.id}/xblock/{self.url_usage(block_type, block)}/handler/{name}"


COURSE_SPECS = (
    ("NorthwindX", "STAT101x", "1T2024", False, 30),
    ("NorthwindX", "CS50P", "3T2023", False, 25),
    ("MeridianU", "BIO210x", "1T2024", False, 15),
    ("MeridianU", "HIST300", "2023_Fall", False, 10),
    ("OpenLearn", "DATA8x", "2T2024", False, 12),
    ("HarbourX", "PH207x", "2013_Spring", True, 8),
)


class World:
    """Everything shared by all chunks: roster, actors, staff and courses."""

    def __init__(self, seed: int, roster_size: int, events: int):
        rng = Random(seed)
        self.seed = seed
        self.roster = build_roster(rng, roster_size)
        self.courses = [Course(rng, org, code, run, legacy) for org, code, run, legacy, _ in COURSE_SPECS]
        self.course_cum = cumulative(w for *_, w in COURSE_SPECS)
        self.staff = self.roster[:min(15, roster_size)]
        # About 25 events per active learner; the rest of the roster never acts but may be mentioned.
        n_actors = max(min(20, roster_size), min(roster_size, events // 25))
        self.actors = rng.sample(self.roster, n_actors)
        # A few learners produce most of the activity, as in any course.
        self.actor_cum = cumulative(1.0 / (rank + 10) for rank in range(n_actors))
        for person in self.roster:
            # Every person gets a device profile so subject and mention lookups never fail.
            self._equip(rng, person)

    @staticmethod
    def _equip(rng: Random, person: Person) -> None:
        person.ips = [ipv6(rng) if rng.random() < 0.1 else public_ipv4(rng) for _ in range(rng.randrange(1, 3))]
        person.agent = rng.choice(BROWSER_AGENTS)
        person.mobile = rng.choice(MOBILE_DEVICES) if rng.random() < 0.25 else None
        person.lang = rng.choice(ACCEPT_LANGUAGES)
        person.client_id = f"{rng.randrange(10**8, 10**10)}.{rng.randrange(1_600_000_000, 1_710_000_000)}"
        person.device_id = uuid4(rng).upper() if person.mobile else None

    def anonymous_id(self, person: Person, course: Course) -> str:
        """Course-specific anonymous id, as ORA2 and LTI use (a hash on the platform too)."""
        return hashlib.md5(f"{self.seed}:{person.id}:{course.id}".encode()).hexdigest()


# --------------------------------------------------------------------------- generation


class Burst:
    """One person's browsing session: the same ip, agent and session for a run of events."""

    __slots__ = ("person", "course", "session", "ip", "agent", "mobile", "lang", "remaining", "seq")

    def __init__(self, rng: Random, world: World, person: Person | None = None):
        self.person = p = person or weighted(rng, world.actors, world.actor_cum)
        self.course = weighted(rng, world.courses, world.course_cum)
        self.session = hex32(rng)
        self.ip = rng.choice(p.ips)
        # Staff work from the browser; learners sometimes from the app.
        self.mobile = p.mobile if p.mobile and person is None and rng.random() < 0.5 else None
        self.agent = self.mobile[0] if self.mobile else p.agent
        self.lang = p.lang
        self.remaining = 1 + int(rng.expovariate(1 / 18))
        self.seq = rng.choice(self.course.sequences)


class Planted:
    """What a chunk put into the log, for the --planted-out report."""

    def __init__(self):
        self.people: set[int] = set()  # roster indexes whose identifiers appear
        self.named: set[int] = set()  # roster indexes mentioned by name in free text
        self.first_named: set[int] = set()  # ... by first name only
        self.values = {k: set() for k in ("ips", "sessions", "agents", "phones", "client_ids",
                                          "device_ids", "anonymous_ids", "secrets")}
        self.lookalikes: set[str] = set()
        self.families: dict[str, int] = {}
        self.malformed = {"prefixed": [], "truncated": [], "blank": [], "invalid_utf8": []}


class ChunkGenerator:
    """Generates one chunk of events from its own seeded stream."""

    def __init__(self, world: World, chunk: int, first_event: int, count: int, seconds_per_event: float):
        self.world = world
        self.rng = Random((world.seed << 32) ^ (chunk + 1) * 0x9E3779B1)
        self.first_event, self.count = first_event, count
        self.spacing = seconds_per_event
        self.now_ts = START_TIME + first_event * seconds_per_event
        self.planted = Planted()
        self.bursts: list[Burst] = []
        self.staff_bursts: dict[int, Burst] = {}
        self.families = [name for name, _ in FAMILY_WEIGHTS]
        self.family_cum = cumulative(w for _, w in FAMILY_WEIGHTS)

    # ---------------------------------------------------------------- plumbing

    def next_burst(self) -> Burst:
        rng = self.rng
        if len(self.bursts) < CONCURRENT_BURSTS:
            b = Burst(rng, self.world)
            self.bursts.append(b)
            self._note_burst(b)
        i = int(rng.random() * len(self.bursts))
        b = self.bursts[i]
        b.remaining -= 1
        if b.remaining <= 0:
            self.bursts.pop(i)
        return b

    def _note_burst(self, b: Burst) -> None:
        p, v = self.planted, self.planted.values
        p.people.add(b.person.index)
        v["ips"].add(b.ip)
        v["sessions"].add(b.session)
        v["agents"].add(b.agent)
        v["client_ids"].add(b.person.client_id)
        if b.mobile:
            v["device_ids"].add(b.person.device_id)

    def time(self) -> str:
        self.now_ts += self.spacing * (0.5 + self.rng.random())
        return iso_time(self.now_ts)

    def other_person(self, b: Burst) -> Person:
        roster = self.world.roster
        p = roster[int(self.rng.random() * len(roster))]
        return p if p is not b.person else roster[(p.index + 1) % len(roster)]

    def staff_burst(self, b: Burst) -> Burst:
        """A staff member's own session, looking at the same course as `b`."""
        staff = self.rng.choice(self.world.staff)
        sb = self.staff_bursts.get(staff.index)
        if sb is None:
            sb = self.staff_bursts[staff.index] = Burst(self.rng, self.world, staff)
            self._note_burst(sb)
        sb.course, sb.seq = b.course, b.seq
        return sb

    def page_url(self, b: Burst) -> str:
        """A courseware URL the learner is looking at, in one of the LMS/MFE shapes."""
        c, (chapter, seq, verticals) = b.course, b.seq
        vertical = self.rng.choice(verticals)
        r = self.rng.random()
        if r < 0.4:
            return (f"https://{HOST}/xblock/{c.usage('vertical', vertical)}"
                    "?show_title=0&show_bookmark_button=0&recheck_access=1&view=student_view")
        if r < 0.7 or c.legacy:
            url = f"https://{HOST}/courses/{c.id}/courseware/{chapter}/{seq}/"
            if self.rng.random() < 0.3:
                url += f"?activate_block_id={quote(c.usage('vertical', vertical), safe='')}"
            return url
        return f"https://{MFE_HOST}/course/{c.id}/{c.usage('sequential', seq)}/{c.usage('vertical', vertical)}"

    def referer(self, b: Burst) -> str:
        """Mostly courseware; sometimes profile pages, e-mail campaign links or token URLs."""
        r = self.rng.random()
        if r < 0.86:
            return self.page_url(b)
        p = b.person
        if r < 0.90:
            return f"https://{PROFILE_HOST}/u/{p.username}"
        if r < 0.93:
            return (f"https://{HOST}/dashboard?utm_source=braze&utm_medium=email&utm_campaign=weekly"
                    f"&email={quote(p.email, safe='')}&sfmc_id={self.rng.randrange(10**7, 10**8)}")
        if r < 0.95:
            uid36 = _base36(p.id)
            return f"https://{HOST}/password_reset_confirm/{uid36}-{self.rng.getrandbits(80):x}-{hex32(self.rng)[:20]}/"
        if r < 0.97:
            return f"https://{ACCOUNT_HOST}/?token={hex32(self.rng)}{hex32(self.rng)[:8]}"
        if r < 0.985:
            return "https://www.google.com/"
        return f"https://{HOST}/courses/{b.course.id}/progress/{p.id}/"

    def context(self, b: Burst, path: str, server: bool, module: tuple | None = None,
                person: Person | None = None) -> dict:
        """The context dict in the platform's key order; some carry the legacy copies."""
        p = person or b.person
        rng = self.rng
        c = b.course
        if server:
            ctx = {"course_id": c.id, "course_user_tags": {}, "user_id": p.id, "path": path,
                   "org_id": c.org, "enterprise_uuid": ""}
            if rng.random() < 0.15:
                partition = f"xblock.partition_service.partition_{rng.randrange(10**9, 10**10)}"
                ctx["course_user_tags"] = {partition: str(rng.randrange(2))}
        else:
            ctx = {"user_id": p.id, "path": path, "course_id": c.id, "org_id": c.org, "enterprise_uuid": ""}
            if rng.random() < 0.3:
                ctx["client_id"] = p.client_id
        if rng.random() < 0.08:
            # Older releases copied the request envelope into the context.
            ctx.update(username=p.username, ip=b.ip, agent=b.agent, host=HOST, session=b.session)
        elif rng.random() < 0.1:
            ctx["username"] = p.username
        if module:
            ctx["module"] = {"display_name": module[0], "usage_key": module[1]}
        return ctx

    def envelope(self, b: Burst, event_type: str, event, source: str, context: dict,
                 page: str | None = None, referer: str | None = None, username: str | None = None) -> dict:
        """A full event in the platform's key order."""
        return {
            "username": b.person.username if username is None else username,
            "event_type": event_type,
            "ip": b.ip,
            "agent": b.agent,
            "host": HOST,
            "referer": self.referer(b) if referer is None else referer,
            "accept_language": b.lang,
            "event": event,
            "event_source": source,
            "context": context,
            "time": self.time(),
            "page": page,
            "session": b.session,
            "name": event_type,
        }

    def browser(self, b: Burst, event_type: str, event) -> dict:
        page = self.page_url(b)
        return self.envelope(b, event_type, event, "browser", self.context(b, "/event", False),
                             page=page, referer=page)

    def server(self, b: Burst, event_type: str, event, path: str, module: tuple | None = None) -> dict:
        return self.envelope(b, event_type, event, "server", self.context(b, path, True, module))

    def background(self, b: Burst, event_type: str, event) -> dict:
        """A server event from a Celery task or management command: the envelope is empty."""
        c = b.course
        ctx = {"course_id": c.id, "org_id": c.org, "enterprise_uuid": ""}
        return {"username": "", "event_type": event_type, "ip": "", "agent": "", "host": "",
                "referer": "", "accept_language": "", "event": event, "event_source": "server",
                "context": ctx, "time": self.time(), "page": None, "session": "", "name": event_type}

    # ---------------------------------------------------------------- free text

    def text(self, b: Burst, lo: int, hi: int) -> str:
        """Prose, with planted personal data in PII_RATE of the fields."""
        rng = self.rng
        parts = [PROSE[int(rng.random() * len(PROSE))] for _ in range(rng.randint(lo, hi))]
        if rng.random() < PII_RATE:
            parts.insert(rng.randrange(len(parts) + 1), self.pii_snippet(b))
            if rng.random() < 0.2:
                parts.insert(rng.randrange(len(parts) + 1), self.pii_snippet(b))
        if rng.random() < LOOKALIKE_RATE:
            look = LOOKALIKES[int(rng.random() * len(LOOKALIKES))]
            self.planted.lookalikes.add(look)
            parts.insert(rng.randrange(len(parts) + 1), look)
        return " ".join(parts)

    def pii_snippet(self, b: Burst) -> str:
        """One sentence that leaks a classmate's (or the author's own) identifiers."""
        rng, planted = self.rng, self.planted
        other = self.other_person(b)
        me = b.person
        kind = rng.randrange(13)
        planted.people.add(other.index)
        if kind == 0:
            return f"You can reach me at {me.email} if you want to compare notes."
        if kind == 1:
            planted.values["phones"].add(other.phone)
            return f"{other.first} said we could call {other.phone} to join the study group."
        if kind == 2:
            planted.values["phones"].add(me.phone)
            return f"My number is {me.phone}, text me before Sunday."
        if kind == 3:
            planted.named.add(other.index)
            return f"{other.name} and I worked through this together."
        if kind == 4:
            planted.first_named.add(other.index)
            return f"Thanks {other.first}, your hint about the units really helped."
        if kind == 5:
            return f"@{other.username} did you get the same result as me?"
        if kind == 6:
            return (f"I shared my notes here: https://docs.studyshare.example/view?id={rng.randrange(10**5, 10**6)}"
                    f"&email={quote(other.email, safe='') if rng.random() < 0.5 else other.email}&ref=forum")
        if kind == 7:
            ip = public_ipv4(rng)
            planted.values["ips"].add(ip)
            return f"My Jupyter server is at {ip}:8888 if anyone wants to look."
        if kind == 8:
            planted.named.add(other.index)
            return f"Please contact {other.name} ({other.email}) about the group project."
        if kind == 9:
            planted.values["phones"].add(me.phone)
            planted.named.add(me.index)
            return f"Regards, {me.name}, {me.phone}"
        if kind == 10:
            return f"Ask {other.username}, they solved it last week."
        if kind == 11:
            return f"I am {me.username} on the course Slack, and {other.email} is my teammate."
        planted.first_named.add(other.index)
        planted.values["phones"].add(other.phone)
        return f"Hi {other.first}! I tried to ring you on {other.phone} but no answer."

    # ---------------------------------------------------------------- families

    def implicit(self, b: Burst) -> dict:
        """A request logged by the tracking middleware: event_type is the URL path."""
        rng, c = self.rng, b.course
        chapter, seq, verticals = b.seq
        r = rng.random()
        get, post = {}, {}
        username = None
        if r < 0.25:
            path = f"/courses/{c.id}/courseware/{chapter}/{seq}/"
            if rng.random() < 0.3:
                path += f"{rng.randrange(1, len(verticals) + 1)}"
        elif r < 0.40:
            video = rng.choice(c.videos)
            path = c.handler("video", video[0], "xmodule_handler/save_user_state")
            pos = int(rng.random() * video[3])
            post = {"saved_video_position": [f"{pos // 3600:02d}:{pos // 60 % 60:02d}:{pos % 60:02d}"]} \
                if rng.random() < 0.7 else {"speed": [rng.choice(("1.25", "1.5", "0.75", "2.0"))]}
        elif r < 0.50:
            problem = rng.choice(c.problems)
            path = c.handler("problem", problem["hex"], "xmodule_handler/problem_check")
            for n, kind, _ in problem["inputs"]:
                post[f"input_{c.input_id(problem['hex'], n)}"] = [self.answer_value(b, kind)]
        elif r < 0.58:
            path = c.handler("sequential", seq, "xmodule_handler/goto_position")
            post = {"position": [str(rng.randrange(1, len(verticals) + 1))]}
        elif r < 0.66:
            path = rng.choice((f"/courses/{c.id}/course/", f"/courses/{c.id}/progress", "/dashboard",
                               f"/courses/{c.id}/info", f"/courses/{c.id}/discussion/forum/", "/jsi18n/",
                               f"/api/courseware/sequence/{c.usage('sequential', seq)}",
                               f"/api/course_home/outline/{c.id}", "/api/learning_sequences/v1/course_outline/"))
        elif r < 0.69:
            path = f"/api/user/v1/accounts/{b.person.username}"
            if rng.random() < 0.3:
                path += "/image"
        elif r < 0.70:
            path = f"/api/user/v1/preferences/{b.person.username}"
        elif r < 0.71:
            # Staff looking at a learner's progress page: the learner's id is in the path.
            subject = self.other_person(b)
            self.planted.people.add(subject.index)
            b = self.staff_burst(b)
            path = f"/courses/{c.id}/progress/{subject.id}/"
        elif r < 0.76:
            commentable = rng.choice(c.discussions)
            path = f"/courses/{c.id}/discussion/{commentable}/threads/create"
            post = {"thread_type": [rng.choice(("discussion", "question"))], "title": [rng.choice(TITLES)],
                    "body": [self.text(b, 2, 8)], "anonymous": ["false"], "anonymous_to_peers": ["false"],
                    "auto_subscribe": ["true"]}
        elif r < 0.81:
            path = f"/courses/{c.id}/discussion/threads/{hex24(rng)}/reply"
            post = {"body": [self.text(b, 1, 6)]}
        elif r < 0.83:
            # Registration: the person is not logged in yet, but their details are in the POST.
            username, person = "", self.other_person(b)
            self.planted.people.add(person.index)
            path = "/user_api/v1/account/registration/"
            post = {"email": [person.email], "name": [person.name], "username": [person.username],
                    "password": "********", "level_of_education": [rng.choice(("b", "m", "hs", "p"))],
                    "gender": [rng.choice(("f", "m", "o"))], "year_of_birth": [str(rng.randrange(1950, 2008))],
                    "country": [rng.choice(("NO", "US", "IN", "BR", "NG", "DE", "CN"))],
                    "goals": [self.text(b, 1, 4)], "honor_code": ["true"], "terms_of_service": ["true"]}
        elif r < 0.87:
            username = ""
            path = rng.choice(("/user_api/v1/account/login_session/", "/api/user/v1/account/login_session/"))
            post = {"email": [b.person.email], "password": "********", "remember": ["false"]}
        elif r < 0.88:
            username = ""
            path = "/password_reset/"
            post = {"email": [b.person.email]}
        elif r < 0.90:
            student = self.other_person(b)
            self.planted.people.add(student.index)
            b = self.staff_burst(b)
            path = f"/courses/{c.id}/instructor/api/" + rng.choice(("get_student_progress_url", "reset_student_attempts"))
            ident = student.email if rng.random() < 0.4 else student.username
            post = {"unique_student_identifier": [ident]}
            if "reset" in path:
                post["problem_to_reset"] = [c.usage("problem", rng.choice(c.problems)["hex"])]
                post["delete_module"] = ["false"]
        elif r < 0.93:
            path = f"/courses/{c.id}/discussion/forum/search"
            get = {"text": [self.text(b, 1, 1)[:80]], "page": ["1"], "sort_key": ["activity"]}
        elif r < 0.95:
            path = f"/search/{c.id}"
            post = {"search_string": [rng.choice(SEARCH_TERMS)], "page_size": ["20"], "page_index": ["0"]}
        else:
            path = c.handler("problem", rng.choice(c.problems)["hex"], "xmodule_handler/problem_show")
        event = self._implicit_event(post, get)
        ctx = self.context(b, path, True)
        if not path.startswith(("/courses/", "/search/")):
            # Requests outside a course carry an empty course and org.
            ctx.update(course_id="", org_id="")
            del ctx["course_user_tags"]
        if username == "":
            ctx["user_id"] = None
            ctx.pop("username", None)
        ev = self.envelope(b, path, event, "server", ctx, username=username)
        return ev

    def _implicit_event(self, post: dict, get: dict) -> str:
        payload = py_json({"POST": post, "GET": get})
        if len(payload) == IMPLICIT_PAYLOAD_LIMIT:
            # Keep the contract simple for tests: a 512-character payload is always a cut one.
            post["csrfmiddlewaretoken"] = [hex32(self.rng) + hex32(self.rng)]
            payload = py_json({"POST": post, "GET": get})
        # Cut exactly as the middleware does: the result is no longer valid JSON.
        return payload[:IMPLICIT_PAYLOAD_LIMIT]

    def answer_value(self, b: Burst, kind: str):
        """A learner's raw answer for one input of the given response type."""
        rng = self.rng
        if kind == "multiplechoiceresponse":
            return f"choice_{rng.randrange(4)}"
        if kind == "choiceresponse":
            return [f"choice_{i}" for i in sorted(rng.sample(range(5), rng.randrange(1, 4)))]
        if kind == "optionresponse":
            return rng.choice(CHOICE_TEXTS)
        if kind in ("stringresponse", "numericalresponse"):
            return rng.choice(SHORT_ANSWERS)
        return self.text(b, 1, 3)

    def video(self, b: Burst) -> dict:
        """Browser video events (JSON-string payload) or mobile ones (dict + client)."""
        rng, c = self.rng, b.course
        block, _, code, duration, _ = rng.choice(c.videos)
        t = round(rng.random() * duration, 6)
        vid = f"i4x-{c.org}-{c.code}-video-{block}" if c.legacy else block
        if b.mobile:
            return self._mobile_video(b, block, t, duration)
        r = rng.random()
        if r < 0.30:
            etype, data = "play_video", {"id": vid, "currentTime": t, "code": code, "duration": duration}
        elif r < 0.52:
            etype, data = "pause_video", {"id": vid, "currentTime": t, "code": code, "duration": duration}
        elif r < 0.64:
            new = round(rng.random() * duration, 3)
            etype, data = "seek_video", {"id": vid, "old_time": t, "new_time": new,
                                         "type": rng.choice(("onSlideSeek", "onSkipSeek", "onVideoSeek")),
                                         "code": code, "duration": duration}
        elif r < 0.78:
            etype, data = "load_video", {"id": vid, "code": code, "duration": duration}
        elif r < 0.84:
            etype, data = "stop_video", {"id": vid, "currentTime": duration, "code": code, "duration": duration}
        elif r < 0.89:
            etype, data = "speed_change_video", {"id": vid, "current_time": t, "old_speed": "1.0",
                                                 "new_speed": rng.choice(("1.25", "1.50", "2.0", "0.75")),
                                                 "code": code, "duration": duration}
        else:
            etype = rng.choice(("edx.video.closed_captions.shown", "edx.video.closed_captions.hidden",
                                "edx.video.transcript.shown", "edx.video.language_menu.shown",
                                "show_transcript", "hide_transcript", "complete_video"))
            data = {"id": vid, "code": code, "duration": duration, "current_time": t}
        return self.browser(b, etype, js(data))

    def _mobile_video(self, b: Burst, block: str, t: float, duration: float) -> dict:
        rng, c, p = self.rng, b.course, b.person
        agent, app, os_name, os_version, maker, model = b.mobile
        etype = rng.choice(("edx.video.played", "edx.video.paused", "edx.video.loaded",
                            "edx.video.stopped", "edx.video.position.changed", "play_video", "pause_video"))
        data = {"currentTime": t, "code": "mobile", "id": c.usage("video", block)}
        if "position" in etype:
            data = {"old_time": t, "new_time": round(rng.random() * duration, 3), "type": "onSkipSeek",
                    "code": "mobile", "id": data["id"]}
        ctx = {"user_id": p.id, "course_id": c.id, "org_id": c.org, "path": "/segmentio/event",
               "application": {"name": app, "version": "4.0.2" if os_name == "Android" else "4.13.0"},
               "client": {"library": {"name": f"analytics-{os_name.lower()}", "version": "4.10.4"},
                          "os": {"name": os_name, "version": os_version},
                          "device": {"id": p.device_id, "manufacturer": maker, "model": model},
                          "network": {"wifi": rng.random() < 0.7,
                                      "carrier": rng.choice(("Telenor", "Vodafone", "Jio", "T-Mobile"))},
                          "ip": b.ip, "locale": b.lang[:5] or "en-US", "timezone": "Europe/Oslo",
                          "userAgent": agent},
               "received_at": iso_time(self.now_ts + 0.5), "component": "videoplayer",
               "open_in_browser_url": f"https://{HOST}/courses/{c.id}/jump_to/{c.usage('video', block)}"}
        return self.envelope(b, etype, data, "mobile", ctx, referer="")

    def navigation(self, b: Burst) -> dict:
        """Sequence navigation, link clicks, outline, bookmarks and page_close."""
        rng, c = self.rng, b.course
        chapter, seq, verticals = b.seq
        seq_usage = c.usage("sequential", seq)
        r = rng.random()
        if r < 0.45:
            count = len(verticals)  # always >= 2
            etype = rng.choice(("seq_goto", "seq_next", "seq_next", "seq_prev"))
            if etype == "seq_goto":
                old, new = rng.randrange(1, count + 1), rng.randrange(1, count + 1)
            elif etype == "seq_next":
                old = rng.randrange(1, count)
                new = old + 1
            else:
                old = rng.randrange(2, count + 1)
                new = old - 1
            data = {"old": old, "new": new, "id": seq_usage}
            if not c.legacy:
                data.update(current_tab=old, tab_count=count, target_tab=new, widget_placement="top")
            ev = self.browser(b, etype, js(data))
            if rng.random() < 0.3:
                b.seq = rng.choice(c.sequences)
            return ev
        if r < 0.60:
            etype = rng.choice(("edx.ui.lms.sequence.next_selected", "edx.ui.lms.sequence.previous_selected",
                                "edx.ui.lms.sequence.tab_selected"))
            data = {"tab_count": len(verticals), "widget_placement": rng.choice(("top", "bottom")),
                    "current_tab": rng.randrange(1, len(verticals) + 1), "id": seq_usage}
            return self.browser(b, etype, py_json(data))
        if r < 0.72:
            return self.browser(b, "page_close", "")
        if r < 0.84:
            current = self.page_url(b)
            target = self._link_target(b)
            return self.browser(b, "edx.ui.lms.link_clicked", {"current_url": current, "target_url": target})
        if r < 0.93:
            target_seq = rng.choice(c.sequences)
            return self.browser(b, "edx.ui.lms.outline.selected", {
                "current_url": f"https://{MFE_HOST}/course/{c.id}/home",
                "target_name": rng.choice(COMPONENT_NAMES),
                "target_url": f"https://{HOST}/courses/{c.id}/jump_to/{c.usage('sequential', target_seq[1])}",
                "widget_placement": "accordion"})
        vertical = c.usage("vertical", rng.choice(verticals))
        path = "/api/bookmarks/v1/bookmarks/"
        return self.server(b, "edx.bookmark.added", {
            "component_type": "vertical", "component_usage_id": vertical, "course_id": c.id,
            # The platform's bookmark id embeds the username.
            "bookmark_id": f"{b.person.username},{vertical}"}, path)

    def _link_target(self, b: Burst) -> str:
        rng, c = self.rng, b.course
        r = rng.random()
        if r < 0.6:
            return f"https://{HOST}/courses/{c.id}/jump_to/{c.usage('sequential', rng.choice(c.sequences)[1])}"
        if r < 0.75:
            return rng.choice(("https://en.wikipedia.org/wiki/Central_limit_theorem",
                               "https://docs.python.org/3/tutorial/datastructures.html",
                               "https://www.khanacademy.org/math/statistics-probability"))
        if r < 0.85:
            return f"https://zoom.us/j/{rng.randrange(10**9, 10**10)}?pwd={hex32(rng)[:22]}"
        if r < 0.93:
            return (f"https://forms.gle.example/survey?entry.1={quote_plus(b.person.email)}"
                    f"&entry.2={quote_plus(b.person.name)}")
        return f"https://{PROFILE_HOST}/u/{self.other_person(b).username}"

    def problem(self, b: Burst) -> dict:
        """Browser and server problem events, hints, showanswer and rescoring."""
        rng, c = self.rng, b.course
        problem = rng.choice(c.problems)
        block = problem["hex"]
        usage = c.usage("problem", block)
        module = (problem["name"], usage)
        r = rng.random()
        if r < 0.32:
            return self.browser(b, "problem_check", self._querystring(b, c, problem))
        if r < 0.42:
            return self.browser(b, "problem_graded", [self._querystring(b, c, problem), self._problem_html(c, problem)])
        if r < 0.75:
            return self._server_problem_check(b, c, problem, module)
        path = c.handler("problem", block, "xmodule_handler/" + rng.choice(("problem_show", "problem_check", "hint_button")))
        if r < 0.83:
            return self.server(b, "showanswer", {"problem_id": usage}, path, module)
        if r < 0.86:
            ev = self.browser(b, rng.choice(("problem_reset", "problem_save", "problem_show")), self._querystring(b, c, problem))
            if ev["event_type"] == "problem_show":
                ev["event"] = js({"problem": usage})
            return ev
        if r < 0.95:
            n, kind, question = problem["inputs"][0]
            if rng.random() < 0.5:
                return self.server(b, "edx.problem.hint.demandhint_displayed", {
                    "hint_index": 0, "hint_len": 2, "hint_text": "Remember to convert units first.",
                    "module_id": usage}, path, module)
            return self.server(b, "edx.problem.hint.feedback_displayed", {
                "hint_label": rng.choice(("Correct", "Incorrect", "Try again")),
                "problem_part_id": f"{block}_{n - 1}", "trigger_type": "single",
                "student_answer": [self.answer_value(b, "customresponse") if kind == "customresponse"
                                   else rng.choice(SHORT_ANSWERS)],
                "correctness": rng.random() < 0.5, "question_type": kind, "module_id": usage,
                "choice_all": [f"choice_{i}" for i in range(3)],
                "hints": [{"text": "Think about what stays constant between the two cases."}]}, path, module)
        # Rescoring is done by staff on a learner's submission.
        student = self.other_person(b)
        self.planted.people.add(student.index)
        return self.server(self.staff_burst(b), "problem_rescore", {
            "state": {"correct_map": {}, "student_answers": {}, "seed": 1, "done": True},
            "problem_id": usage, "orig_score": 0, "orig_total": 1, "new_score": 1, "new_total": 1,
            "success": "correct", "student": student.username}, path, module)

    def _querystring(self, b: Burst, c: Course, problem: dict) -> str:
        pairs = []
        for n, kind, _ in problem["inputs"]:
            key = f"input_{c.input_id(problem['hex'], n)}"
            value = self.answer_value(b, kind)
            if isinstance(value, list):
                pairs.extend(f"{key}%5B%5D={v}" for v in value)
            else:
                pairs.append(f"{key}={quote_plus(value)}")
        return "&".join(pairs)

    @staticmethod
    def _problem_html(c: Course, problem: dict) -> str:
        parts = [f'\n\n\n<h3 class="hd hd-2 problem-header">\n  {problem["name"]}\n</h3>\n\n'
                 '<div class="problem-progress"></div>\n\n<div class="problem">\n  <div>']
        for n, kind, question in problem["inputs"]:
            iid = c.input_id(problem["hex"], n)
            parts.append(f'<p>{question}</p>\n<div class="inputtype" id="inputtype_{iid}">'
                         f'<input type="text" name="input_{iid}" id="input_{iid}" aria-describedby="status_{iid}"/>'
                         f'<span class="status" id="status_{iid}" data-tooltip="Not yet answered."></span></div>\n')
        parts.append('</div>\n<div class="action"><button class="submit btn-brand">Submit</button></div>\n</div>\n')
        return "".join(parts)

    def _server_problem_check(self, b: Burst, c: Course, problem: dict, module: tuple) -> dict:
        rng = self.rng
        block = problem["hex"]
        answers, submission, correct_map, student_answers, input_state = {}, {}, {}, {}, {}
        grade = 0
        for n, kind, question in problem["inputs"]:
            iid = c.input_id(block, n)
            value = self.answer_value(b, kind)
            correct = rng.random() < 0.6
            grade += correct
            answers[iid] = value
            student_answers[iid] = value
            input_state[iid] = {}
            # The submission shows choice texts where `answers` has choice ids.
            if kind in TEXT_RESPONSES:
                shown = value
            elif isinstance(value, list):
                shown = [rng.choice(CHOICE_TEXTS) for _ in value]
            else:
                shown = rng.choice(CHOICE_TEXTS)
            submission[iid] = {"question": question, "answer": shown, "response_type": kind,
                               "input_type": INPUT_TYPES.get(kind, "textline"), "correct": correct,
                               "variant": "", "group_label": ""}
            msg = ""
            if kind == "customresponse" and rng.random() < 0.5:
                # External graders echo the submission back in their feedback.
                msg = f"<p>Your answer: {value[:120]}</p><p>Grader output: expected a shorter explanation.</p>"
            correct_map[iid] = {"correctness": "correct" if correct else "incorrect", "npoints": None,
                                "msg": msg, "hint": "", "hintmode": None, "queuestate": None,
                                "answervariable": None}
        event = {"answers": answers, "attempts": rng.randrange(1, 4), "correct_map": correct_map,
                 "grade": grade, "max_grade": len(problem["inputs"]), "problem_id": module[1],
                 "state": {"correct_map": {}, "done": None, "input_state": input_state, "seed": 1,
                           "student_answers": student_answers if rng.random() < 0.3 else {}},
                 "submission": submission, "success": "correct" if grade == len(problem["inputs"]) else "incorrect"}
        path = c.handler("problem", block, "xmodule_handler/problem_check")
        ev = self.server(b, "problem_check", event, path, module)
        if c.legacy:
            ev["page"] = "x_module"
        return ev

    def forum(self, b: Burst) -> dict:
        """Discussion events: posts, edits, votes, views, reports and searches."""
        rng, c = self.rng, b.course
        kind = rng.choice(("thread", "thread", "response", "response", "comment"))
        action = rng.choice(("created", "created", "viewed", "viewed", "viewed", "voted", "voted", "edited", "reported"))
        commentable = rng.choice(c.discussions)
        thread = hex24(rng)
        url = f"https://{HOST}/courses/{c.id}/discussion/forum/{commentable}/threads/{thread}"
        if rng.random() < 0.07:
            return self.server(b, "edx.forum.searched", {
                "query": self.text(b, 1, 1)[:100] if rng.random() < 0.5 else rng.choice(SEARCH_TERMS),
                "page": 1, "total_results": rng.randrange(0, 40)}, f"/courses/{c.id}/discussion/forum/search")
        author = self.other_person(b)
        self.planted.people.add(author.index)
        event = {"category_id": commentable, "category_name": rng.choice(c.categories), "commentable_id": commentable,
                 "id": thread if kind == "thread" else hex24(rng), "url": url,
                 "user_course_roles": [], "user_forums_roles": ["Student"], "options": {"followed": rng.random() < 0.3}}
        if action in ("created", "edited", "reported"):
            body = self.text(b, 1, 8)
            if rng.random() < 0.05:
                body = "\n\n".join(self.text(b, 10, 14) for _ in range(3))
            truncated = len(body) > FORUM_BODY_LIMIT
            event.update(body=body[:FORUM_BODY_LIMIT], truncated=truncated)
            if kind == "thread":
                event.update(title=rng.choice(TITLES), title_truncated=False,
                             thread_type=rng.choice(("discussion", "question")),
                             anonymous=rng.random() < 0.05, anonymous_to_peers=rng.random() < 0.05, group_id=None)
        if kind != "thread":
            event["discussion"] = {"id": thread}
            if kind == "comment":
                event["response"] = {"id": hex24(rng)}
        if action == "edited":
            event["edit_reason"] = rng.choice(("Fixed a typo.", "Removed personal details as requested.",
                                               f"Merged with the post by {author.first}."))
            if "Merged" in event["edit_reason"]:
                self.planted.first_named.add(author.index)
        if action in ("voted", "viewed", "edited", "reported"):
            event["target_username"] = author.username
        if action == "voted":
            event.update(undo_vote=rng.random() < 0.1, vote_value="up")
        if action == "viewed" and kind == "thread":
            event.update(title=rng.choice(TITLES), title_truncated=False)
        if rng.random() < 0.05:
            event["team_id"] = f"team-{rng.randrange(1, 60)}-{hex32(rng)[:8]}"
        etype = f"edx.forum.{kind}.{action}"
        if kind == "thread" and action == "created":
            path = f"/courses/{c.id}/discussion/{commentable}/threads/create"
        elif action == "created":
            path = f"/courses/{c.id}/discussion/threads/{thread}/reply"
        elif action == "viewed":
            path = f"/courses/{c.id}/discussion/forum/{commentable}/threads/{thread}"
        else:
            verb = {"voted": "upvote", "edited": "update", "reported": "flagAbuse"}[action]
            kind_path = "threads" if kind == "thread" else "comments"
            path = f"/courses/{c.id}/discussion/{kind_path}/{thread}/{verb}"
        return self.server(b, etype, event, path)

    def ora(self, b: Burst) -> dict:
        """Open Response Assessment: submissions, saved drafts, peer assessments."""
        rng, c = self.rng, b.course
        block, _ = rng.choice(c.oras)
        usage = c.usage("openassessment", block)
        handler = rng.choice(("submit", "save_submission", "peer_assess", "render_peer_assessment"))
        path = c.handler("openassessment", block, handler)
        module = ("Open Response Assessment", usage)
        me = self.world.anonymous_id(b.person, c)
        self.planted.values["anonymous_ids"].add(me)
        sub_uuid = uuid4(rng)
        r = rng.random()
        if r < 0.3:
            parts = [{"text": self.text(b, 3, 10)} for _ in range(rng.randrange(1, 3))]
            answer = {"parts": parts, "file_keys": [], "files_descriptions": [], "files_names": [], "files_sizes": []}
            if rng.random() < 0.2:
                key = f"{me}/{c.id}/{block}/0"
                answer.update(file_keys=[key], files_descriptions=["My lab report"],
                              files_names=[f"{b.person.username}_report.pdf"], files_sizes=[184233])
            return self.server(b, "openassessmentblock.create_submission", {
                "submission_uuid": sub_uuid, "attempt_number": 1, "created_at": iso_time(self.now_ts),
                "submitted_at": iso_time(self.now_ts), "answer": answer}, path, module)
        if r < 0.55:
            saved = py_json({"parts": [{"text": self.text(b, 2, 10)}]})
            return self.server(b, "openassessmentblock.save_submission", {"saved_response": saved}, path, module)
        if r < 0.8:
            parts = [{"option": {"name": rng.choice(("Excellent", "Good", "Fair", "Poor")), "points": rng.randrange(0, 4)},
                      "criterion": {"name": name, "points_possible": 3}, "feedback": self.text(b, 0, 2)}
                     for name in ("Ideas", "Content", "Organisation")]
            return self.server(b, "openassessmentblock.peer_assess", {
                "feedback": self.text(b, 1, 5), "rubric": {"content_hash": f"{rng.getrandbits(160):040x}"},
                "scored_at": iso_time(self.now_ts), "scorer_id": me, "submission_uuid": sub_uuid,
                "score_type": "PE", "parts": parts}, path, module)
        return self.server(b, "openassessmentblock.get_peer_submission", {
            "item_id": usage, "course_id": c.id, "requesting_student_id": me,
            "submission_returned_uuid": sub_uuid}, path, module)

    def notes(self, b: Burst) -> dict:
        """Student notes: added, edited and searched."""
        rng, c = self.rng, b.course
        usage = c.usage("html", hex32(rng))
        path = f"/courses/{c.id}/edxnotes/"
        r = rng.random()
        base = {"note_id": hex24(rng), "component_usage_id": usage,
                "highlighted_content": rng.choice(PROSE), "truncated": []}
        if r < 0.5:
            base.update(note_text=self.text(b, 1, 3), tags=rng.sample(("exam", "review", "important", "week2", "confusing"), 2))
            return self.browser(b, "edx.course.student_notes.added", js(base))
        if r < 0.8:
            base.update(old_note_text=self.text(b, 1, 2), note_text=self.text(b, 1, 3),
                        old_tags=["review"], tags=["review", "exam"])
            return self.browser(b, "edx.course.student_notes.edited", js(base))
        return self.server(b, "edx.course.student_notes.searched", {
            "number_of_results": rng.randrange(0, 12), "search_string": self.text(b, 1, 1)[:60]}, path)

    def teams(self, b: Burst) -> dict:
        """Teams: searches and learners added by themselves or by someone else."""
        rng = self.rng
        team_id = f"study-group-{rng.randrange(1, 40)}-{hex32(rng)[:8]}"
        if rng.random() < 0.5:
            return self.server(b, "edx.team.searched", {
                "search_text": self.text(b, 1, 1)[:50], "topic_id": f"topic-{rng.randrange(1, 6)}",
                "number_of_results": rng.randrange(0, 20)}, "/api/team/v0/teams/")
        subject = b.person if rng.random() < 0.7 else self.other_person(b)
        self.planted.people.add(subject.index)
        return self.server(b, "edx.team.learner_added", {
            "team_id": team_id, "user_id": subject.id,
            "add_method": "joined_from_team_view" if subject is b.person else "added_by_another_user"},
            "/api/team/v0/team_membership/")

    def textbook(self, b: Burst) -> dict:
        """PDF textbook page turns and searches."""
        rng, c = self.rng, b.course
        chapter = rng.choice(c.textbooks)
        page = rng.randrange(1, 80)
        if rng.random() < 0.75:
            data = {"type": rng.choice(("gotopage", "nextpage", "prevpage")), "old": page, "new": page + 1,
                    "chapter": chapter, "name": "textbook.pdf.page.loaded"}
            return self.browser(b, "book", js(data))
        query = self.text(b, 1, 1)[:60] if rng.random() < 0.5 else rng.choice(SEARCH_TERMS)
        data = {"caseSensitive": False, "chapter": chapter, "highlightAll": True, "name": "textbook.pdf.search.executed",
                "page": page, "phraseSearch": False, "query": query, "status": rng.choice(("found", "not found"))}
        return self.browser(b, "textbook.pdf.search.executed", js(data))

    def enrollment(self, b: Burst) -> dict:
        """Enrollment changes; batch enrollment by staff has actor != subject."""
        rng, c = self.rng, b.course
        etype = rng.choice(("edx.course.enrollment.activated", "edx.course.enrollment.activated",
                            "edx.course.enrollment.deactivated", "edx.course.enrollment.mode_changed"))
        mode = rng.choice(("audit", "verified", "honor", "professional"))
        r = rng.random()
        if r < 0.15:
            subject = self.other_person(b)
            self.planted.people.add(subject.index)
            return self.server(self.staff_burst(b), etype, {"course_id": c.id, "user_id": subject.id, "mode": mode},
                               f"/courses/{c.id}/instructor/api/students_update_enrollment")
        if r < 0.25:
            ev = self.background(b, etype, {"course_id": c.id, "user_id": b.person.id, "mode": mode})
            ev["context"]["command"] = "./manage.py lms enroll_user_in_course"
            return ev
        return self.server(b, etype, {"course_id": c.id, "user_id": b.person.id, "mode": mode}, "/change_enrollment")

    def grades(self, b: Burst) -> dict:
        """Grade events; many come from Celery tasks with an empty envelope."""
        rng, c = self.rng, b.course
        problem = rng.choice(c.problems)
        txn = uuid4(rng)
        uid = str(b.person.id)
        r = rng.random()
        if r < 0.45:
            return self.server(b, "edx.grades.problem.submitted", {
                "user_id": uid, "course_id": c.id, "problem_id": c.usage("problem", problem["hex"]),
                "event_transaction_id": txn, "event_transaction_type": "edx.grades.problem.submitted",
                "weighted_earned": rng.randrange(0, 3), "weighted_possible": 2},
                c.handler("problem", problem["hex"], "xmodule_handler/problem_check"))
        if r < 0.85:
            earned = float(rng.randrange(0, 6))
            return self.background(b, "edx.grades.subsection.grade_calculated", {
                "user_id": uid, "course_id": c.id, "block_id": c.usage("sequential", problem["seq"][1]),
                "course_version": c.version, "weighted_total_earned": earned, "weighted_total_possible": 5.0,
                "weighted_graded_earned": earned, "weighted_graded_possible": 5.0,
                "first_attempted": iso_time(self.now_ts - 86400).replace("T", " "),
                "subtree_edited_timestamp": "2024-01-08 15:47:38.629000+00:00",
                "event_transaction_id": txn, "event_transaction_type": "edx.grades.problem.submitted",
                "visible_blocks_hash": f"{rng.getrandbits(160):040x}"})
        etype = rng.choice(("edx.course.grade.passed.first_time", "edx.course.grade.now_passed", "edx.course.grade.now_failed"))
        return self.background(b, etype, {"user_id": uid, "course_id": c.id, "event_transaction_id": txn,
                                          "event_transaction_type": "edx.grades.problem.submitted"})

    def completion(self, b: Burst) -> dict:
        """Block completion changes from the completion service."""
        rng, c = self.rng, b.course
        block_type = rng.choice(("problem", "video", "html", "html"))
        block = c.usage(block_type, hex32(rng))
        return self.server(b, "edx.completion.block_completion.changed", {
            "user_id": b.person.id, "course_id": c.id, "context_key": c.id, "block_id": block,
            "block_type": block_type, "completion": 1.0, "is_new": rng.random() < 0.8},
            f"/courses/{c.id}/xblock/{block}/handler/publish_completion")

    def certificate(self, b: Burst) -> dict:
        """Certificates; the id opens a public page that shows the learner's real name."""
        rng, c = self.rng, b.course
        cert = hex32(rng)
        self.planted.values["secrets"].add(cert)
        ev = self.background(b, rng.choice(("edx.certificate.created", "edx.certificate.created", "edx.certificate.shared")), {
            "user_id": b.person.id, "course_id": c.id, "certificate_id": cert,
            "certificate_url": f"https://{HOST}/certificates/{cert}",
            "enrollment_mode": "verified", "generation_mode": rng.choice(("batch", "self"))})
        if ev["event_type"] == "edx.certificate.shared":
            ev["event"]["social_network"] = rng.choice(("LinkedIn", "Facebook", "Twitter"))
        return ev

    def settings(self, b: Burst) -> dict:
        """Account settings changes: old/new values are often personal data."""
        rng, p = self.rng, b.person
        setting = rng.choice(("name", "email", "pref-lang", "pref-lang", "year_of_birth", "country",
                              "gender", "bio", "is_active", "level_of_education"))
        table = SETTING_TABLES.get(setting, "auth_userprofile")
        other = self.other_person(b)
        if setting == "name":
            old, new = other.name, p.name
            self.planted.named.update((other.index, p.index))
        elif setting == "email":
            old, new = other.email, p.email
        elif setting == "pref-lang":
            old, new = "en", rng.choice(("fr", "es-419", "nb", "zh-cn", "ar"))
        elif setting == "year_of_birth":
            old, new = None, rng.randrange(1950, 2008)
        elif setting == "bio":
            old, new = "", self.text(b, 1, 3)
        elif setting == "is_active":
            old, new = False, True
        else:
            old, new = None, rng.choice(("NO", "IN", "f", "m", "b", "hs"))
        self.planted.people.add(other.index)
        return self.server(b, "edx.user.settings.changed",
                           {"user_id": p.id, "setting": setting, "old": old, "new": new, "truncated": [], "table": table},
                           f"/api/user/v1/accounts/{p.username}")

    def special_exam(self, b: Burst) -> dict:
        """Proctored exam attempts: attempt_code is a secret."""
        rng, c = self.rng, b.course
        code = uuid4(rng).upper()
        self.planted.values["secrets"].add(code)
        seq = rng.choice(c.sequences)
        status = rng.choice(("created", "started", "submitted"))
        kind = rng.choice(("proctored", "proctored", "timed"))
        return self.server(b, f"edx.special_exam.{kind}.attempt.{status}", {
            "exam_id": rng.randrange(1, 30), "exam_content_id": c.usage("sequential", seq[1]),
            "exam_name": "Midterm Exam", "exam_default_time_limit_mins": 60, "exam_is_proctored": kind == "proctored",
            "exam_is_practice_exam": False, "exam_is_active": True, "attempt_id": rng.randrange(1, 9000),
            "attempt_user_id": b.person.id, "attempt_started_at": iso_time(self.now_ts - 600) if status != "created" else None,
            "attempt_completed_at": iso_time(self.now_ts) if status == "submitted" else None,
            "attempt_code": code, "attempt_allowed_time_limit_mins": 60, "attempt_status": status,
            "attempt_event_elapsed_time_secs": rng.randrange(60, 3600) if status == "submitted" else None},
            "/api/edx_proctoring/v1/proctored_exam/attempt")

    def instructor(self, b: Burst) -> dict:
        """Legacy instructor-dashboard events: `student` is a username or an e-mail."""
        rng, c = self.rng, b.course
        student = self.other_person(b)
        self.planted.people.add(student.index)
        sb = self.staff_burst(b)
        etype = rng.choice(("reset-student-attempts", "rescore-student-submission",
                            "delete-student-module-state", "get-student-progress-page"))
        event = {"student": student.email if rng.random() < 0.3 else student.username,
                 "instructor": sb.person.username, "course": c.id}
        if etype != "get-student-progress-page":
            event["problem"] = c.usage("problem", rng.choice(c.problems)["hex"])
        if etype == "reset-student-attempts":
            event["old_attempts"] = rng.randrange(1, 5)
        return self.server(sb, etype, event, f"/courses/{c.id}/instructor/api/{etype.replace('-', '_')}")

    def xblock_other(self, b: Burst) -> dict:
        """Polls, surveys, problem builder answers and drag-and-drop."""
        rng, c = self.rng, b.course
        r = rng.random()
        if r < 0.3:
            block, _ = rng.choice(c.polls)
            return self.server(b, "xblock.poll.submitted", {"choice": rng.choice(("R", "B", "G", "O"))},
                               c.handler("poll", block, "vote"), ("Poll", c.usage("poll", block)))
        if r < 0.5:
            block, _ = rng.choice(c.polls)
            return self.server(b, "xblock.survey.submitted", {
                "choices": {"enjoy": rng.choice(("Y", "N", "M")), "recommend": rng.choice(("Y", "N", "M")),
                            "learn": rng.choice(("Y", "N", "M"))}},
                c.handler("survey", block, "vote"), ("Survey", c.usage("survey", block)))
        if r < 0.65:
            block, _ = rng.choice(c.polls)
            return self.server(b, "xblock.problem_builder.submitted", {
                "num_attempts": rng.randrange(1, 3), "submitted_message": "Thank you for your answer.",
                "answers": [{"name": "goals", "value": self.text(b, 1, 3)}]},
                c.handler("problem-builder", block, "submit"), ("Reflection", c.usage("problem-builder", block)))
        block, _ = rng.choice(c.dnds)
        usage = c.usage("drag-and-drop-v2", block)
        etype = rng.choice(("edx.drag_and_drop_v2.item.dropped", "edx.drag_and_drop_v2.item.picked_up",
                            "edx.drag_and_drop_v2.loaded"))
        event = {}
        if etype.endswith("dropped"):
            event = {"item_id": rng.randrange(6), "location": f"Zone {rng.randrange(1, 4)}",
                     "location_id": rng.randrange(1, 4), "is_correct": rng.random() < 0.6,
                     "input": None if rng.random() < 0.8 else str(rng.randrange(1, 100))}
        elif etype.endswith("picked_up"):
            event = {"item_id": rng.randrange(6)}
        return self.server(b, etype, event, c.handler("drag-and-drop-v2", block, "publish_event"),
                           ("Drag and Drop", usage))

    # ---------------------------------------------------------------- output

    def run(self) -> tuple[bytes, Planted]:
        """Generate this chunk: the bytes to write and what was planted in them."""
        rng = self.rng
        lines: list[bytes] = []
        families = self.planted.families
        for _ in range(self.count):
            b = self.next_burst()
            family = self.families[bisect(self.family_cum, rng.random() * self.family_cum[-1])]
            event = getattr(self, family)(b)
            families[family] = families.get(family, 0) + 1
            if rng.random() < RAW_UTF8_RATE:
                line = json.dumps(event, ensure_ascii=False).encode()
            else:
                line = json.dumps(event).encode("ascii")
            if rng.random() < MALFORMED_RATE:
                line = self.damage(line, event, lines)
            lines.append(line)
        lines.append(b"")
        return b"\n".join(lines), self.planted

    def damage(self, line: bytes, event: dict, lines: list[bytes]) -> bytes:
        """Turn a line into one of the malformations real logs contain."""
        rng, malformed = self.rng, self.planted.malformed
        kind = rng.randrange(4)
        if kind == 0:
            t = datetime.fromisoformat(event["time"])
            user = event["context"].get("user_id") if isinstance(event["context"], dict) else None
            malformed["prefixed"].append(len(lines))
            return (f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} INFO {rng.randrange(7, 40)} [tracking] "
                    f"[user {user}] [ip {event['ip'] or None}] logger.py:41 - ").encode() + line
        if kind == 1:
            malformed["truncated"].append(len(lines))
            return line[:int(len(line) * (0.3 + 0.6 * rng.random()))]
        if kind == 2:
            # The event itself survives; an empty line is written before it.
            malformed["blank"].append(len(lines))
            lines.append(b"")
            return line
        malformed["invalid_utf8"].append(len(lines))
        # A Latin-1 encoded name where UTF-8 was expected.
        return line.replace(b'"agent": "', b'"agent": "\xd8yvind \xc6r\xf8 ', 1)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


# Method name -> share of events, in percent. "implicit" 35, video 20, navigation 15,
# problem 12, forum 5, the rest 13.
FAMILY_WEIGHTS = (
    ("implicit", 35.0), ("video", 20.0), ("navigation", 15.0), ("problem", 12.0), ("forum", 5.0),
    ("grades", 2.6), ("completion", 2.0), ("ora", 1.6), ("enrollment", 1.5), ("textbook", 1.2),
    ("xblock_other", 1.2), ("notes", 0.8), ("settings", 0.6), ("teams", 0.5), ("certificate", 0.3),
    ("special_exam", 0.3), ("instructor", 0.4),
)


# --------------------------------------------------------------------------- driver

_WORLD: World | None = None  # the world a worker process generates from


def _init_worker(seed: int, roster_size: int, events: int) -> None:
    global _WORLD
    _WORLD = World(seed, roster_size, events)


def _run_chunk(job: tuple[int, int, int, float]) -> tuple[bytes, Planted]:
    chunk, first, count, spacing = job
    return ChunkGenerator(_WORLD, chunk, first, count, spacing).run()


def seconds_per_event(events: int) -> float:
    """Spread the log over at least a day, at about two events per second."""
    return max(86_400.0, events * 0.5) / max(events, 1)


def generate(out_path: str, events: int, seed: int, roster_size: int, jobs: int) -> tuple[World, Planted]:
    """Write the log and return the world plus everything planted in it."""
    global _WORLD
    spacing = seconds_per_event(events)
    chunks = [(i, first, min(CHUNK_EVENTS, events - first), spacing)
              for i, first in enumerate(range(0, events, CHUNK_EVENTS))]
    world = _WORLD = World(seed, roster_size, events)
    total, line_offset = Planted(), 0
    with open(out_path, "wb") as out:
        if jobs > 1 and len(chunks) > 1:
            if "fork" in multiprocessing.get_all_start_methods():
                # Forked workers inherit the world instead of rebuilding it.
                pool = multiprocessing.get_context("fork").Pool(jobs)
            else:
                pool = multiprocessing.get_context("spawn").Pool(
                    jobs, initializer=_init_worker, initargs=(seed, roster_size, events))
            with pool:
                # imap keeps chunk order, so the output does not depend on scheduling.
                for data, planted in pool.imap(_run_chunk, chunks):
                    out.write(data)
                    line_offset = _merge(total, planted, line_offset, data)
        else:
            for chunk in chunks:
                data, planted = _run_chunk(chunk)
                out.write(data)
                line_offset = _merge(total, planted, line_offset, data)
    return world, total


def _merge(total: Planted, part: Planted, line_offset: int, data: bytes) -> int:
    total.people |= part.people
    total.named |= part.named
    total.first_named |= part.first_named
    total.lookalikes |= part.lookalikes
    for key, values in part.values.items():
        total.values[key] |= values
    for family, n in part.families.items():
        total.families[family] = total.families.get(family, 0) + n
    for kind, rows in part.malformed.items():
        total.malformed[kind].extend(line_offset + r + 1 for r in rows)
    return line_offset + data.count(b"\n")


def write_roster(path: str, world: World) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("id", "username", "email", "name"))
        for p in world.roster:
            writer.writerow((p.id, p.username, p.email, p.name))


def write_planted(path: str, world: World, planted: Planted, args) -> None:
    """Every identifier the log contains, so tests can check that none survives."""
    people = [world.roster[i] for i in sorted(planted.people)]
    report = {
        "generator": {"events": args.events, "seed": args.seed, "roster_size": args.roster_size},
        "usernames": sorted(p.username for p in people),
        "user_ids": sorted(p.id for p in people),
        "emails": sorted(p.email for p in people),
        "names": sorted({world.roster[i].name for i in planted.named | planted.people}),
        "first_names_mentioned": sorted({world.roster[i].first for i in planted.first_named}),
        "phones": sorted(planted.values["phones"]),
        "ips": sorted(planted.values["ips"]),
        "sessions": sorted(planted.values["sessions"]),
        "agents": sorted(planted.values["agents"]),
        "client_ids": sorted(planted.values["client_ids"]),
        "device_ids": sorted(planted.values["device_ids"]),
        "anonymous_ids": sorted(planted.values["anonymous_ids"]),
        "secrets": sorted(planted.values["secrets"]),
        "must_survive": sorted(planted.lookalikes),
        "families": dict(sorted(planted.families.items())),
        "malformed_lines": planted.malformed,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate synthetic Open edX tracking logs.")
    parser.add_argument("--events", type=int, required=True, help="number of events (lines, before blank ones)")
    parser.add_argument("--seed", type=int, required=True, help="random seed; same arguments give the same bytes")
    parser.add_argument("--out", required=True, help="output log file")
    parser.add_argument("--roster-out", help="write the roster CSV (id,username,email,name) here")
    parser.add_argument("--roster-size", type=int, default=50_000, help="people in the roster (default 50000)")
    parser.add_argument("--planted-out", help="write the identifiers planted in the log as JSON here")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                        help="worker processes; does not change the output")
    args = parser.parse_args(argv)
    if args.events < 0 or args.roster_size < 1:
        parser.error("--events must be >= 0 and --roster-size >= 1")
    started = time.perf_counter()
    world, planted = generate(args.out, args.events, args.seed, args.roster_size, args.jobs)
    if args.roster_out:
        write_roster(args.roster_out, world)
    if args.planted_out:
        write_planted(args.planted_out, world, planted, args)
    size = os.path.getsize(args.out)
    print(f"wrote {args.events} events, {size} bytes ({size / max(args.events, 1):.0f} B/event) "
          f"to {args.out} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
