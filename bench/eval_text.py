"""Accuracy of free-text scrubbing with a roster: recall and precision per kind, on a labelled set.

The set is built here, from a seed: realistic forum, answer and note sentences with planted
names, usernames, @mentions, emails, phone numbers, user ids, IP addresses and identifying URLs
of roster people and of strangers, hand-written hard cases, and clean sentences full of
look-alikes that must survive ("Mark my words", "the Joy of learning", versions, dates, prices,
block ids). The roster holds the hard cases (non-ASCII names, apostrophes, hyphens, handles that
begin or end with ``_`` or ``-``, first names that are English words) plus 5,000 generated people,
so that common name parts and user ids are there to collide with.

Each sentence goes through the ``scrub_text`` operator of the research policy. A changed region
of the sentence (a character diff against the output) is a finding: correct when it overlaps a
planted item, a false positive otherwise. A planted item is recalled when its text is gone from
the output and a finding covers it.

    python bench/eval_text.py            # prints the table
    from eval_text import measure        # the figures as a dict (bench/run.py calls it)
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from anonymizer.core.keys import Key  # noqa: E402
from anonymizer.core.operators import REGISTRY, BuildContext, EventState, Identity  # noqa: E402
from anonymizer.core.policy import load_policy  # noqa: E402
from anonymizer.core.pseudonyms import Pseudonymizer  # noqa: E402
from anonymizer.core.roster import Person, Roster  # noqa: E402

SEED = 20240311
FILLER_PEOPLE = 5_000
TEMPLATED_SENTENCES = 300
TARGETS = {"roster_recall": 1.0, "email_recall": 1.0, "phone_recall": 0.99, "disguised_recall": 1.0, "precision": 0.95}

# The hard cases of the roster: id, username, email, name.
PEOPLE = [
    (418207, "_ymir_balder77_", "oyvind.aero@example.no", "Øyvind Ærø"),
    (530114, "zelda-q", "zelda.quintero@example.com", "Zelda Quintero"),
    (264951, "siobhan_obk", "siobhan.obrienkelly@example.ie", "Siobhán O'Brien-Kelly"),
    (739026, "thandi.m", "thandiwe.mokoena@example.co.za", "Thandiwe Mokoena"),
    (602388, "mateo_gn", "mateo.garcia.nunez@example.es", "Mateo García-Núñez"),
    (851473, "aiko.fuji", "aiko.fujimori@example.jp", "Aiko Fujimori"),
    (100457, "prof_oduya", "m.oduya@faculty.example.edu", "Marguerite Oduya"),
    (100982, "rlindqvist-ta", "rafael.lindqvist@faculty.example.edu", "Rafael Lindqvist"),
    (311542, "-lukasz-", "lukasz.wojcik@example.pl", "Łukasz Wójcik"),
    (311977, "zoe_dangelo", "zoe.dangelo@example.it", "Zoë D'Angelo"),
    (312004, "soren_kh", "soren.kh@example.dk", "Søren Kierkegaard-Holm"),
    (312288, "thora.s", "thora.sig@example.is", "Þóra Sigurðardóttir"),
    (312590, "wangfang88", "wang.fang@example.cn", "王芳"),
    (312677, "minjun_kim", "minjun.kim@example.kr", "김민준"),
    (313001, "jl_ferreira-", "jean-luc.ferreira@example.fr", "Jean-Luc Ferreira"),
    (313140, "huong.nguyen", "huong.nguyen@example.vn", "Nguyễn Thị Hương"),
    (313502, "markab", "mark.abernathy@example.com", "Mark Abernathy"),
    (313777, "joyful_okon", "joy.okonkwo@example.ng", "Joy Okonkwo-Ibe"),
    (314020, "gpark_22", "grace.park@example.com", "Grace Park"),
    (314301, "whargreaves", "will.hargreaves@example.co.uk", "Will Hargreaves"),
    (314655, "may_lind", "may.lindgren@example.se", "May Lindgren"),
    (314899, "hope_a", "hope.adeyemi@example.ng", "Hope Adeyemi"),
    (315012, "billc", "bill.castellanos@example.mx", "Bill Castellanos"),
    (315340, "rosetw", "rose.tw@example.com", "Rose Tanaka-Whitfield"),
    (315611, "art_k", "art.kowalczyk@example.pl", "Art Kowalczyk"),
    (315900, "ngozi-e", "ngozi.eze@example.ng", "Ngozi Eze-Okafor"),
    (316118, "dagny__", "dagny.bjork@example.is", "Dagný Björk"),
    (316402, "seun.ade", "seun.adebayo@example.ng", "Oluwaseun Adebayo"),
    (316777, "amelie-r", "amelie.roux@example.fr", "Amélie Roux"),
    (317001, "darcy_o", "darcy.oconnor@example.ie", "D'Arcy O'Connor"),
    # First names that are also places: found, so a sentence about the place is a false positive.
    (317240, "jordan.abara", "jordan.abara@example.com", "Jordan Abara"),
    (317566, "florence_w", "florence.wekesa@example.ke", "Florence Wekesa"),
]

STRANGER_EMAILS = [
    "kim.nguyen@otherschool.example.org", "j_smith+edx@mail.example.co.uk", "ana-maria.pop@exemplu.example.ro",
    "studygroup42@lists.example.net", "h.schmidt@uni.example.de", "x.y.z@sub.domain.example.com",
    "priya.r@iit.example.in", "t.oconnor@example.ie", "a1b2c3@example.io", "noreply-2024@example.travel",
]

# Phone numbers as people write them, formats the old research pipeline missed included.
PHONE_FORMATS = [
    "818.123.1234", "(04) 123 1234", "0300 123 1234", "010-5432-1234",
    "({a}) {d3}-{d4}", "{a}-{d3}-{d4}", "{a}.{d3}.{d4}", "+1 {a} {d3} {d4}", "+1-{a}-{d3}-{d4}", "1-800-{d3}-{d4}",
    "+44 20 {d4} {d4}", "+44 7{d3} {d6}", "07{d3} {d6}", "020 {d4} {d4}",
    "+49 30 {d8}", "+49 (0)30 {d4} {d4}", "030 {d4} {d4}",
    "+33 6 {d2} {d2} {d2} {d2}", "06 {d2} {d2} {d2} {d2}", "01 {d2} {d2} {d2} {d2}",
    "+91 9{d4} {d5}", "09{d3} {d3} {d3}",
    "+47 9{d2} {d2} {d3}", "+46 70 {d3} {d2} {d2}",
    "+61 4{d2} {d3} {d3}", "(02) {d4} {d4}", "04{d2} {d3} {d3}",
    "+82 10-{d4}-{d4}", "010 {d4} {d4}", "+81 90-{d4}-{d4}", "03-{d4}-{d4}",
    "+86 13{d1} {d4} {d4}", "+92 300 {d7}", "+234 803 {d3} {d4}", "0803 {d3} {d4}",
    "+55 11 9{d4}-{d4}", "(11) 9{d4}-{d4}", "+27 82 {d3} {d4}", "+972 4-{d3}-{d4}",
    "+34 6{d2} {d3} {d3}", "6{d2} {d3} {d3}", "+39 3{d2} {d3} {d4}", "+31 6 {d4} {d4}", "+48 5{d2} {d3} {d3}",
    "+1{a}{d3}{d4}", "{a}{d3}{d4}",
]

TEMPLATES = [
    ("Thanks {first}, your hint about the units really helped.", ["first"]),
    ("{name} and I worked through this together.", ["name"]),
    ("@{user} did you get the same result as me?", ["mention"]),
    ("Ask {user}, they solved it last week.", ["user"]),
    ("You can reach me at {email} if you want to compare notes.", ["email"]),
    ("My number is {phone}, text me before Sunday.", ["phone"]),
    ("Please contact {name} ({email}) about the group project.", ["name", "email"]),
    ("Regards, {name}, {phone}", ["name", "phone"]),
    ("I am {user} on the course Slack, and {stranger} is my teammate.", ["user", "stranger"]),
    ("Hi {first}! I tried to ring you on {phone} but no answer.", ["first", "phone"]),
    ("My user id is {id}, can staff reset my attempts?", ["id"]),
    ("I shared my notes here: https://docs.studyshare.example/view?id=123&email={email}&ref=forum", ["url"]),
    ("cc @{user} and @{user2} for the lab report", ["mention", "mention2"]),
    ("{last} explained it better than the textbook did.", ["last"]),
    ("Shoutout to {name_lower} for the study guide!", ["name_lower"]),
    ("{name_upper} IS THE BEST TA EVER", ["name_upper"]),
    ("According to {first}'s notes, the answer is 42.", ["first"]),
    ("Worked with {name_ascii} on this one.", ["name_ascii"]),
    ("My Jupyter server is at {ip}:8888 if anyone wants to look.", ["ip"]),
    ("Text {first} at {phone} or mail {stranger}.", ["first", "phone", "stranger"]),
    ("({user}) said the deadline moved.", ["user"]),
    ("Is {user}'s solution correct?", ["user"]),
    ("{user}: I agree with your approach.", ["user"]),
    ("thanks to {first_lower} for the help", ["first_lower"]),
    ("Send the draft to {stranger} or call {phone}.", ["stranger", "phone"]),
    ("Profile: https://lms.example.org/u/{user}?tab=posts", ["url"]),
    ("Meet {first} and {first2} at the library.", ["first", "first2"]),
    ("My phone: {phone}", ["phone"]),
]

HARD_CASES = [
    # (sentence, [(kind, planted text)])
    ("Hi all! @zelda-q and I are meeting Thursday. Øyvind Ærø said he'd bring his simulations.",
     [("mention", "@zelda-q"), ("name", "Øyvind Ærø")]),
    ("Removed Siobhán's phone number (siobhan_obk, please use DMs)", [("name", "Siobhán"), ("username", "siobhan_obk")]),
    ("Siobhan OBrien wrote the first draft.", [("name", "Siobhan"), ("name", "OBrien")]),
    ("O’Brien-Kelly has the notes.", [("name", "O’Brien-Kelly")]),
    ("Ask _ymir_balder77_ about orbits.", [("username", "_ymir_balder77_")]),
    ("ØYVIND ÆRØ and øyvind ærø are the same person.", [("name", "ØYVIND ÆRØ"), ("name", "øyvind ærø")]),
    ("Oyvind Aero typed his name without the special letters.", [("name", "Oyvind Aero")]),
    ("-lukasz- posted the solution; Łukasz is quick.", [("username", "-lukasz-"), ("name", "Łukasz")]),
    ("Lukasz Wojcik without accents.", [("name", "Lukasz"), ("name", "Wojcik")]),
    ("thanks dagny__ and jl_ferreira- for reviewing", [("username", "dagny__"), ("username", "jl_ferreira-")]),
    ("Zoë D'Angelo and Zoe DAngelo and ZOË D’ANGELO", [("name", "Zoë D'Angelo"), ("name", "Zoe DAngelo"), ("name", "ZOË D’ANGELO")]),
    ("王芳说她明天来。", [("name", "王芳")]),
    ("김민준님이 답을 올렸어요.", [("name", "김민준")]),
    ("Nguyễn Thị Hương and Huong Nguyen", [("name", "Nguyễn"), ("name", "Thị"), ("name", "Hương"), ("name", "Huong"), ("name", "Nguyen")]),
    ("Grace Park is in my group.", [("name", "Grace Park")]),
    ("Thanks Mateo García-Núñez and García Núñez!", [("name", "Mateo García-Núñez"), ("name", "García Núñez")]),
    ("Write to zelda.quintero@example.com or ZELDA.QUINTERO@EXAMPLE.COM.",
     [("email", "zelda.quintero@example.com"), ("email", "ZELDA.QUINTERO@EXAMPLE.COM")]),
    ("The form had oyvind.aero%40example.no in it.", [("email", "oyvind.aero%40example.no")]),
    ("thandi.m. That's her handle.", [("username", "thandi.m")]),
    ("Is @thandi.m. online?", [("mention", "@thandi.m")]),
    ("Søren Kierkegaard-Holm and Kierkegaard Holm", [("name", "Søren Kierkegaard-Holm"), ("name", "Kierkegaard"), ("name", "Holm")]),
    ("Þóra and Thora are both in the lab.", [("name", "Þóra"), ("name", "Thora")]),
    ("Jean-Luc said Ferreira would grade it.", [("name", "Jean-Luc"), ("name", "Ferreira")]),
    ("D'Arcy O'Connor, Darcy and OConnor.", [("name", "D'Arcy O'Connor"), ("name", "Darcy"), ("name", "OConnor")]),
    ("My id is 418207 and hers is 530114.", [("id", "418207"), ("id", "530114")]),
    ("Call me on +47 912 34 567 or (312) 555-0147.", [("phone", "+47 912 34 567"), ("phone", "(312) 555-0147")]),
    ("Marguerite Oduya's office: ask prof_oduya.", [("name", "Marguerite Oduya"), ("username", "prof_oduya")]),
    ("Amélie Roux / Amelie Roux / amélie", [("name", "Amélie Roux"), ("name", "Amelie Roux"), ("name", "amélie")]),
]

# Identifiers in disguise: encoded (entities, percent-encoding, JSON escapes, fullwidth forms),
# obfuscated as people write them in forums, cut off by truncation, URLs without a scheme, phones
# with prefixes, odd separators and extensions, IPs padded or inside host names.
DISGUISED = [
    ("Mail me: jane.doe (at) example (dot) com", [("email", "jane.doe (at) example (dot) com")]),
    ("jane[at]example[dot]org is my address", [("email", "jane[at]example[dot]org")]),
    ("write to zelda.quintero at example dot com", [("email", "zelda.quintero at example dot com")]),
    ("reach me at h.schmidt @ uni.example.de tonight", [("email", "h.schmidt @ uni.example.de")]),
    ("My email is kim.nguyen {at} otherschool {dot} org.", [("email", "kim.nguyen {at} otherschool {dot} org")]),
    ("ping priya.r at gmail.com after class", [("email", "priya.r at gmail.com")]),
    ("My email is jane.doe&#64;example.com.", [("email", "jane.doe&#64;example.com")]),
    ("Contact oyvind.aero&#x40;example.no for the slides", [("email", "oyvind.aero&#x40;example.no")]),
    ("Send it to seun.adebayo&commat;example.ng", [("email", "seun.adebayo&commat;example.ng")]),
    ("The link had zelda.quintero%2540example.com in it", [("email", "zelda.quintero%2540example.com")]),
    (r'{"email": "mateo.garcia.nunez\u0040example.es"}', [("email", r"mateo.garcia.nunez\u0040example.es")]),
    (r'{\"answer\": \"grace.park\\u0040example.com\"}', [("email", r"grace.park\\u0040example.com")]),
    ("ｚｅｌｄａ．ｑｕｉｎｔｅｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ is my mail", [("email", "ｚｅｌｄａ．ｑｕｉｎｔｅｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ")]),
    ("Thanks for the help, you can write to aiko.fujimori@exam", [("email", "aiko.fujimori@exam")]),
    ("Zo&euml; D&#39;Angelo helped me", [("name", "Zo&euml;"), ("name", "D&#39;Angelo")]),
    (r"\u738b\u82b3 wrote the summary", [("name", r"\u738b\u82b3")]),
    ("%E7%8E%8B%E8%8A%B3 wrote it", [("name", "%E7%8E%8B%E8%8A%B3")]),
    ("ask zelda&#45;q about it", [("username", "zelda&#45;q")]),
    ("ｍａｔｅｏ＿ｇｎ posted the answer", [("username", "ｍａｔｅｏ＿ｇｎ")]),
    ("thanks &#64;thandi.m for the notes", [("mention", "&#64;thandi.m")]),
    ("Profile: linkedin.com/in/zelda-quintero", [("url", "linkedin.com/in/zelda-quintero")]),
    ("see example.net/u/markab for more", [("url", "example.net/u/markab")]),
    ("find me at www.facebook.com/mateo.gn", [("url", "www.facebook.com/mateo.gn")]),
    ("my page github.com/whargreaves has the code", [("url", "github.com/whargreaves")]),
    ("Call tel:+1-415-555-0132 tonight", [("phone", "+1-415-555-0132")]),
    ("Phone:+44 20 7946 0958", [("phone", "+44 20 7946 0958")]),
    ("call +1\u00a0415\u00a0555\u00a00199 now", [("phone", "+1\u00a0415\u00a0555\u00a00199")]),
    ("my number is 415\u2013555\u20130177", [("phone", "415\u2013555\u20130177")]),
    ("office (312) 555-0147 x123", [("phone", "(312) 555-0147 x123")]),
    ("reception 0803 123 4567 ext. 12", [("phone", "0803 123 4567 ext. 12")]),
    ("my VM is at 192.168.001.023 today", [("ip", "192.168.001.023")]),
    ("the host ec2-203-0-113-25.compute-1.amazonaws.com is down", [("ip", "203-0-113-25")]),
    ("ssh into ip-10-0-1-23.ec2.internal first", [("ip", "10-0-1-23")]),
    ("log file host_203.0.113.5 shows it", [("ip", "203.0.113.5")]),
    ("my address is 2001:db8::1.", [("ip", "2001:db8::1")]),
    ("ruf an: 030/1234567 oder 0171/1234567", [("phone", "030/1234567"), ("phone", "0171/1234567")]),
    ("Tel. 089 / 12345678 (Büro)", [("phone", "089 / 12345678")]),
    ("call 617/555/0143 or 617 - 555 - 0143", [("phone", "617/555/0143"), ("phone", "617 - 555 - 0143")]),
    ("my cell: 617_555_0143", [("phone", "617_555_0143")]),
    ("the tunnel is 2002:cb00:712d::1 now", [("ip", "2002:cb00:712d::1")]),
]

# Look-alikes of the disguises: words "at" and "dot", versions, files, dates, abbreviations,
# decimals, entities, percent signs and backslashes that hide nobody.
CLEAN_DISGUISE = [
    "At the end of the day, we all passed.",
    "Let us meet at home dot six.",
    "Chapter 3 (at) most covers the proof.",
    "Upgrade to v1.2.3 or 2.0.1 before running.",
    "The exam is on 12.03.2024 and the retake on 01.04.2024.",
    "Run file.py and then main.py to see the plot.",
    "Use synonyms, e.g. big and large, i.e. words with one meaning.",
    "The value is 0.5 or 3.75, give or take.",
    "I looked at docs.python.org yesterday.",
    "Open src/app/main.py and/or notes.md first.",
    "The 2.5/3.0 release notes are online.",
    "Rates are 4.5% & 5.2% this year.",
    "Tom &amp; Jerry is a cartoon.",
    "Caf&eacute; au lait costs 3.50.",
    "The file is at C:\\Users\\Public\\notes.txt on my laptop.",
    "Look at the data (dot plot) again.",
    "I'm at work at 9 at the latest.",
    "Meet me at 10.30 at the café.",
    "Score 3 [at] best out of 5.",
    "The fee is 50&#37; lower for auditors.",
    "Results: 12\u201314 points, see pages 3\u20135.",
    "The build 2024-03-15-1 passed.",
    "Our group is at 98.6% completion.",
    "See index.html/ for the layout.",
    "The ratio is 1.5/2.5 in the model.",
    "The 2019/2020/2021 cohorts did better.",
    "We moved from 2020/21 to 2023/24 syllabi.",
    "Weeks 03/11 - 03/15 are the break.",
    "The lab ran 10/12/2024 - 15/12/2024.",
    "The ratio 1234/5678 is small.",
    "Pages 120 - 145 - 160 cover it.",
    "Saved as report_2024_03_11.pdf today.",
    "Scores 3/4 and 12/15 and 7/10 count.",
]

CLEAN = [
    "Mark my words, this will be on the final.",
    "This course really captures the Joy of learning.",
    "Will the grades be released in May?",
    "There is a grace period of two days for late work.",
    "Hope this helps!",
    "The Bill of Rights was ratified in 1791.",
    "A rose by any other name would smell as sweet.",
    "Art history is my favourite elective.",
    "We met in the park after class.",
    "The staff will post the solutions on Friday.",
    "I am on the audit track, not the verified one.",
    "The honor code applies to every exam.",
    "I am on Python 3.11.2 with numpy 1.26.4 and it works.",
    "The deadline moved to 2024-03-15, so we have two more weeks.",
    "The textbook costs $49.99 in the shop, or 45,00 EUR in Europe.",
    "Section 2.3.1 explains the derivation step by step.",
    "Avogadro's number is about 6.022e23, not 6.022e-23.",
    "The answer for part b is 1024 bytes, which is 2^10.",
    "The lecture at 14:30 on 12/03/2024 was moved online.",
    "See block-v1:NorthwindX+Astro101+2024_T1+type@problem+block@932e6f2ce8274072a355a94560216d1a for the problem.",
    "input_932e6f2ce8274072a355a94560216d1a_2_1 was graded as wrong.",
    "ISBN 978-3-16-148410-0 is the edition we use.",
    "The video has 1,000,000 views already.",
    "The population grew from 7 800 000 to 8 100 000.",
    "The p-value was 0.0034 with n = 1200.",
    "Use @property in Python for getters.",
    "The CSS @media rule makes the page responsive.",
    "x = 3.14159265358979 is close enough.",
    "The coordinates are 40.7128, -74.0060.",
    "Order #48213 arrived yesterday.",
    "I scored 87 out of 100 on the quiz.",
    "Chapter 12, page 345, has the proof.",
    "In 1969 the first moon landing happened.",
    "The answer is 3628800, which is 10 factorial.",
    "Released on March 3, 2024 and patched on 2024.03.15.",
    "The event started at 10:30:00 UTC.",
    "My browser is Chrome 122.0.6261.105 on Windows.",
    "The mask is 0x7fffffff in hex.",
    "f(x) = 2x^2 + 3x - 5 has two real roots.",
    "A MacBook costs $1,299.99 in the US.",
    "Room 101, building 7, second floor.",
    "We ran a simulation with 10 000 trials.",
    "The sequence 1 1 2 3 5 8 13 21 is Fibonacci.",
    "Week 4, unit 3, problem 2 is the hard one.",
    "The HTTP status was 404 then 200.",
    "Set the learning rate to 0.001 and the batch size to 64.",
    "The UUID 30cb09e5-592c-4205-9000-b58f662bc4aa is the submission.",
    "Kepler's third law relates period and semi-major axis.",
    "May the force be with you on the exam.",
    "Joy and sorrow are themes of the poem.",
    "The art of problem solving takes practice.",
    "Mark the correct answers and submit.",
    "Bill the hours to the project.",
    "The sun rose at 6:42 this morning.",
    "I will grant that the proof is elegant.",
    "Please read chapters 3-5 before the next session.",
    "The angle is 45 degrees, or pi/4 radians.",
    "The class average was 72.5% this term.",
    "The ratio 16:9 is standard for video.",
    "Temperatures range from -40 to 50 degrees.",
    "I think the key idea is that the sample mean is itself a random variable.",
    "Can someone explain why the confidence interval gets wider?",
    "The second lecture video was much clearer than the reading for me.",
    "Binary search only works because the list is sorted first.",
    "Plotting the residuals showed a clear pattern.",
    "Photosynthesis converts light energy into chemical energy.",
    "The treaty was signed in 1648 after long negotiations.",
    "Our study group meets online every Sunday.",
    "Great question! I had the same doubt.",
    "Honestly the pacing of this week felt rushed.",
    "I spent a semester in Florence and loved it.",
    "The Jordan river flows into the Dead Sea.",
    "Tracking number 1Z 999 AA1 01 2345 6784.",
    "Invoice 2023-118-4471 is overdue.",
    "The serial number is SN-20240311-0042.",
    "Flight LH 454 leaves at 13:05 from gate B22.",
    "Mitochondria have their own DNA.",
    "The Mark II version fixed the bug.",
]


def _folded(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _ascii(text: str) -> str:
    table = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ł": "l", "Ł": "L", "þ": "th", "Þ": "Th", "ð": "d", "'": "", "’": ""})
    decomposed = unicodedata.normalize("NFKD", text.translate(table))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass
class Sentence:
    text: str
    planted: list[tuple[str, str]] = field(default_factory=list)  # (kind, text as planted)
    disguised: bool = False  # its planted items are encoded, obfuscated or otherwise disguised


def build_roster(seed: int = SEED, filler: int = FILLER_PEOPLE) -> Roster:
    """The hard-case people plus FILLER generated people (names, handles and ids to collide with)."""
    import generate

    people = [Person(str(i), (u,), (e,), (n,)) for i, u, e, n in PEOPLE]
    taken_ids = {p.id for p in people}
    taken_users = {p.username for p in people}
    for made in generate.build_roster(Random(seed), filler):
        if str(made.id) in taken_ids or made.username in taken_users:
            continue
        people.append(Person(str(made.id), (made.username,), (made.email,), (made.name,)))
    return Roster(people, ["eval"])


def _phone(rng: Random) -> str:
    def digits(n: int) -> str:
        return "".join(str(rng.randrange(10)) for _ in range(n))

    template = rng.choice(PHONE_FORMATS)
    return template.format(
        a=str(rng.randrange(201, 990)), d1=digits(1), d2=digits(2), d3=digits(3), d4=digits(4), d5=digits(5),
        d6=digits(6), d7=digits(7), d8=digits(8),
    )


def build_set(seed: int = SEED) -> list[Sentence]:
    """The labelled sentences: templated ones from SEED, the hard cases, the clean ones."""
    rng = Random(seed)
    hard = [PEOPLE[i] for i in range(len(PEOPLE))]
    sentences: list[Sentence] = []
    for index in range(TEMPLATED_SENTENCES):
        template, slots = TEMPLATES[index % len(TEMPLATES)]
        _, user, email, name = rng.choice(hard)
        uid = rng.choice(hard)[0]
        _, user2, _, name2 = rng.choice([p for p in hard if p[1] != user])
        tokens = name.split()
        first, last = tokens[0], tokens[-1]
        first2 = name2.split()[0]
        values = {
            "first": first, "last": last, "name": name, "user": user, "user2": user2, "email": email,
            "phone": _phone(rng), "id": str(uid), "stranger": rng.choice(STRANGER_EMAILS),
            "name_lower": name.lower(), "name_upper": name.upper(), "name_ascii": _ascii(name),
            "first_lower": first.lower(), "first2": first2,
            "ip": f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        }
        text = template.format(**values)
        planted = []
        for slot in slots:
            if slot in ("mention", "mention2"):
                planted.append(("mention", "@" + values["user" if slot == "mention" else "user2"]))
            elif slot == "url":
                start = text.index("http")
                end = text.find(" ", start)
                planted.append(("url", text[start:] if end < 0 else text[start:end]))
            else:
                kind = {"first": "name", "last": "name", "name_lower": "name", "name_upper": "name", "name_ascii": "name",
                        "first_lower": "name", "first2": "name", "user": "username", "stranger": "email"}.get(slot, slot)
                planted.append((kind, values[slot]))
        # Parts that are common words ("Mark", "Grace") are not identifying by the rule: they are
        # counted apart, as `common_name`, outside the roster target.
        planted = [("common_name" if kind == "name" and _common_part(value) else kind, value) for kind, value in planted]
        sentences.append(Sentence(text, planted))
    # Every phone format several times over, in the ways people introduce a number.
    for index in range(3 * len(PHONE_FORMATS)):
        phone = _phone(rng) if index >= len(PHONE_FORMATS) else PHONE_FORMATS[index].format(
            a="415", d1="5", d2="55", d3="555", d4="0134", d5="55501", d6="555013", d7="5550134", d8="55501344")
        template = rng.choice(("Call me on {p}.", "WhatsApp: {p}", "my cell is {p} (evenings)", "Tel. {p}",
                               "Reach the TA at {p}, she said.", "{p} is my number"))
        sentences.append(Sentence(template.format(p=phone), [("phone", phone)]))
    # Numbers of every size, some of which are bound to equal a roster user id.
    for _ in range(40):
        number = rng.choice((rng.randrange(10_000, 99_999), rng.randrange(100_000, 400_000), rng.randrange(1_000, 9_999)))
        template = rng.choice(("The answer is {n}.", "We ran {n} trials.", "The video has {n} views.", "Invoice {n} is paid.",
                               "I got {n} points in the simulation.", "Problem {n} of the archive is similar."))
        sentences.append(Sentence(template.format(n=number)))
    sentences += _disguised_people(rng)
    sentences += [Sentence(text, list(planted)) for text, planted in HARD_CASES]
    sentences += [Sentence(text, list(planted), disguised=True) for text, planted in DISGUISED]
    sentences += [Sentence(text) for text in CLEAN + CLEAN_DISGUISE]
    return sentences


_EMAIL_DISGUISES = (
    lambda e: e.replace("@", "&#64;"), lambda e: e.replace("@", "&#x40;"), lambda e: e.replace("@", "&commat;"),
    lambda e: e.replace("@", "%2540"), lambda e: e.replace("@", "\\u0040"), lambda e: e.replace("@", "\\\\u0040"),
    lambda e: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in e),
    lambda e: e.replace("@", " (at) ").replace(".", " (dot) "), lambda e: e.replace("@", "[at]").replace(".", "[dot]"),
    lambda e: e.replace("@", " at ").replace(".", " dot "), lambda e: e.replace("@", " @ "),
)
_USERNAME_DISGUISES = (
    lambda u: f"&#{ord(u[0])};{u[1:]}", lambda u: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in u),
    lambda u: "".join(f"%{ord(c):02X}" for c in u), lambda u: "".join(f"\\u{ord(c):04x}" for c in u),
)


def _disguised_people(rng: Random) -> list[Sentence]:
    """Roster emails and usernames in every disguise, in sentences of a forum."""
    sentences = []
    for index in range(2 * len(_EMAIL_DISGUISES)):
        _, user, email, _ = rng.choice(PEOPLE)
        written = _EMAIL_DISGUISES[index % len(_EMAIL_DISGUISES)](email)
        template = rng.choice(("Mail me: {e} please.", "my address is {e}", "({e}) for questions", "Contact {e} or me."))
        sentences.append(Sentence(template.format(e=written), [("email", written)], disguised=True))
    for index in range(2 * len(_USERNAME_DISGUISES)):
        _, user, _, _ = rng.choice(PEOPLE)
        written = _USERNAME_DISGUISES[index % len(_USERNAME_DISGUISES)](user)
        template = rng.choice(("ask {u} about it", "{u} posted the answer", "thanks {u}!"))
        sentences.append(Sentence(template.format(u=written), [("username", written)], disguised=True))
    return sentences


def _common_part(value: str) -> bool:
    from anonymizer.core.text.mentions import default_common_words

    return " " not in value.strip() and _folded(value) in default_common_words()


def scrubber(roster: Roster, key: Key = Key(b"\x11" * 32)):
    """The research policy's ``scrub_text`` with ROSTER, as a function of one string."""
    policy = load_policy("research")
    identities = {name: Identity(name, rule.format, rule.prefix) for name, rule in policy.identities.items()}
    ctx = BuildContext(Pseudonymizer(key), identities, roster=roster, roster_rules=policy.roster)
    operator = REGISTRY["scrub_text"]
    fn = operator.build(operator.Params(), ctx)
    return lambda text: fn(text, EventState(actors=()))


_REPLACEMENT = re.compile(r"\[(?:NAME|EMAIL|PHONE|URL|IP|USER_ID)\]|@?u_[0-9]{6,20}|@?u_[0-9a-f]{20}")


def _regions(before: str, after: str) -> list[tuple[int, int, str]]:
    """The spans of BEFORE that AFTER replaced, with the replacement of each.

    AFTER is BEFORE with spans swapped for placeholders and pseudonyms, so the text between
    them is found in BEFORE in order; what lies between those pieces is what was replaced.
    When AFTER does not line up that way, a character diff stands in.
    """
    literals = _REPLACEMENT.split(after)
    tokens = _REPLACEMENT.findall(after)
    pattern = "(.+?)".join(re.escape(literal) for literal in literals)
    match = re.fullmatch(pattern, before, re.DOTALL)
    if match is None:
        return _diff_regions(before, after)
    return [(match.start(i + 1), match.end(i + 1), token) for i, token in enumerate(tokens)]


def _diff_regions(before: str, after: str) -> list[tuple[int, int, str]]:
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return [(i1, i2, after[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def _kind_of(replacement: str) -> str:
    for token, kind in (("[NAME]", "name"), ("[EMAIL]", "email"), ("[PHONE]", "phone"), ("[URL]", "url"),
                        ("[IP]", "ip"), ("[USER_ID]", "id")):
        if token in replacement:
            return kind
    return "username" if "u_" in replacement else "other"


# Which replacement kinds count as right for a planted kind (a handle inside a URL goes with the URL).
_ACCEPTS = {"mention": {"username"}, "username": {"username"}, "name": {"name"}, "common_name": {"name"},
            "email": {"email"}, "phone": {"phone"}, "id": {"id"}, "url": {"url"}, "ip": {"ip"}}


def measure(workdir: Path | None = None, seed: int = SEED) -> dict:
    """Recall per planted kind, precision per finding kind and overall, and clean sentences kept."""
    roster = build_roster(seed)
    scrub = scrubber(roster)
    sentences = build_set(seed)
    planted_total: dict[str, int] = {}
    recalled: dict[str, int] = {}
    found_total: dict[str, int] = {}
    found_right: dict[str, int] = {}
    misses: list[str] = []
    false_positives: list[str] = []
    clean_kept = clean_total = 0
    disguised_total = disguised_recalled = 0
    for sentence in sentences:
        before = unicodedata.normalize("NFC", sentence.text)
        after = scrub(before)
        regions = _regions(before, after)
        spans = []
        position = 0
        for kind, value in sentence.planted:  # planted in the order they appear
            start = before.find(unicodedata.normalize("NFC", value), position)
            assert start >= 0, (sentence.text, value)
            spans.append((kind, start, start + len(value), value))
            position = start + len(value)
        if not sentence.planted:
            clean_total += 1
            clean_kept += after == before
        for kind, start, end, value in spans:
            planted_total[kind] = planted_total.get(kind, 0) + 1
            covered = any(r_start < end and start < r_end for r_start, r_end, _ in regions)
            gone = _folded(value) not in _folded(after)
            disguised_total += sentence.disguised
            if covered and gone:
                recalled[kind] = recalled.get(kind, 0) + 1
                disguised_recalled += sentence.disguised
            else:
                misses.append(kind)
        for r_start, r_end, replacement in regions:
            kind = _kind_of(replacement)
            found_total[kind] = found_total.get(kind, 0) + 1
            right = any(r_start < end and start < r_end for _, start, end, _ in spans)
            if right:
                found_right[kind] = found_right.get(kind, 0) + 1
            else:
                false_positives.append(kind)
    recall = {kind: recalled.get(kind, 0) / total for kind, total in sorted(planted_total.items())}
    precision = {kind: found_right.get(kind, 0) / total for kind, total in sorted(found_total.items())}
    roster_kinds = ("name", "username", "mention", "id")  # `common_name` is reported, not targeted
    roster_planted = sum(planted_total.get(k, 0) for k in roster_kinds)
    return {
        "sentences": len(sentences),
        "planted": sum(planted_total.values()),
        "roster_people": len(roster),
        "recall": recall,
        "precision": precision,
        "planted_by_kind": dict(sorted(planted_total.items())),
        "found_by_kind": dict(sorted(found_total.items())),
        "roster_recall": sum(recalled.get(k, 0) for k in roster_kinds) / roster_planted,
        "email_recall": recall.get("email", 1.0),
        "phone_recall": recall.get("phone", 1.0),
        "disguised_planted": disguised_total,
        "disguised_recall": disguised_recalled / max(1, disguised_total),
        "overall_precision": sum(found_right.values()) / max(1, sum(found_total.values())),
        "clean_sentences_kept": clean_kept / clean_total,
        "misses": dict(sorted(Counter(misses).items())),
        "false_positives": dict(sorted(Counter(false_positives).items())),
    }


def main() -> None:
    figures = measure()
    print(f"{figures['sentences']} sentences, {figures['planted']} planted items, roster of {figures['roster_people']:,} people\n")
    print(f"{'kind':<12}{'planted':>8}{'recall':>8}{'found':>7}{'precision':>11}")
    for kind in sorted(set(figures["recall"]) | set(figures["precision"])):
        recall = figures["recall"].get(kind)
        precision = figures["precision"].get(kind)
        print(
            f"{kind:<12}{figures['planted_by_kind'].get(kind, 0):>8}{'' if recall is None else f'{recall:.1%}':>8}"
            f"{figures['found_by_kind'].get(kind, 0):>7}{'' if precision is None else f'{precision:.1%}':>11}"
        )
    print(f"\nroster identifiers recall {figures['roster_recall']:.1%} (target 100%), emails {figures['email_recall']:.1%} "
          f"(target 100%), phones {figures['phone_recall']:.1%} (target 99%)")
    print(f"disguised identifiers ({figures['disguised_planted']}) recall {figures['disguised_recall']:.1%} (target 100%)")
    print(f"precision overall {figures['overall_precision']:.1%} (target 95%); clean sentences unchanged "
          f"{figures['clean_sentences_kept']:.1%}")


if __name__ == "__main__":
    main()
