"""Attachment names and the allow-list (AT-1, AT-4)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import AttachmentRules
from securepractice.policy.attachments import Attachment, AttachmentPolicy
from securepractice.settings import SEED_ATTACHMENT_EXTENSIONS
from strategies import ANY_TEXT

#: The FAQ's list, typed again from the help article, in its order.
FAQ = """
.ai .aif .aifc .aiff .avi .bmp .cpt .dcm .dex .doc .docx .ds2 .eml .eps .gif .hqx .jpe
.jpeg .jpg .log .mid .midi .mif .mov .movie .mp2 .mp3 .mp4 .mpe .mpeg .mpga .obj .oda
.pdf .png .ppt .pptx .ps .qt .ra .ram .rm .rpm .rtf .rtx .rv .smi .smil .stl .text .tif
.tiff .txt .text .vcard .vcf .wav .wbxml .wmlc .wmv .word .xl .xls .xml .xsl .xlsx .zip
""".split()  # noqa: SIM905 - laid out as the article lists them

NOT_LISTED = [
    ".exe", ".bat", ".cmd", ".com", ".js", ".vbs", ".ps1", ".sh", ".jar", ".html", ".htm",
    ".svg", ".heic", ".docm", ".xlsm", ".pptm", ".tar", ".gz", ".7z", ".rar", ".iso", ".lnk",
    ".msi", ".scr", ".php", ".py", ".webp", ".odt", ".csv", ".json",
]  # fmt: skip

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def codes(name: str, policy: AttachmentPolicy | None = None) -> set[str]:
    return {v.code for v in (policy or AttachmentPolicy()).check_name(name)}


def test_the_allow_list_is_the_faqs_list_exactly() -> None:
    """AT-1: the default list is the seed FAQ's, duplicate and odd names included."""
    assert len(FAQ) == 67
    assert tuple(FAQ) == SEED_ATTACHMENT_EXTENSIONS
    assert AttachmentRules().allowed_extensions == frozenset(FAQ)
    assert len(AttachmentRules().allowed_extensions) == 66
    assert {".word", ".xl", ".text"} <= AttachmentRules().allowed_extensions


@pytest.mark.parametrize("extension", sorted(set(FAQ)))
def test_every_listed_extension_is_accepted_in_any_case(extension: str) -> None:
    """AT-1: each listed type passes, compared case-insensitively."""
    assert codes(f"scan{extension}") == set()
    assert codes(f"SCAN{extension.upper()}") == set()
    assert codes(f"Scan{extension.title()}") == set()


@pytest.mark.parametrize("extension", NOT_LISTED)
def test_everything_else_is_refused(extension: str) -> None:
    """AT-1: a type not in the list is refused."""
    assert codes(f"scan{extension}") == {"attachment.extension_not_allowed"}
    assert codes(f"scan{extension.upper()}") == {"attachment.extension_not_allowed"}


def test_a_name_without_extension_is_refused() -> None:
    """AT-1: a name with no extension has no type to allow."""
    assert codes("README") == {"attachment.extension_not_allowed"}
    assert codes("README.") >= {"attachment.extension_not_allowed"}


def test_the_list_can_be_narrowed_in_the_settings() -> None:
    """AT-1: users narrow the allow-list through AttachmentRules."""
    narrow = AttachmentPolicy(AttachmentRules(allowed_extensions={".PDF", ".png"}))
    assert codes("scan.pdf", narrow) == set()
    assert codes("scan.png", narrow) == set()
    assert codes("scan.jpg", narrow) == {"attachment.extension_not_allowed"}


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("scan.pdf.exe", "attachment.extension_not_allowed"),
        ("../scan.pdf", "attachment.name_separator"),
        ("x/scan.pdf", "attachment.name_separator"),
        ("x\\scan.pdf", "attachment.name_separator"),
        ("..pdf", "attachment.name_dot_dot"),
        ("scan..pdf", "attachment.name_dot_dot"),
        ("C:scan.pdf", "attachment.name_drive_letter"),
        ("scan.pdf:hidden.exe", "attachment.name_reserved_character"),
        ('sc"an.pdf', "attachment.name_reserved_character"),
        ("scan\0.pdf", "attachment.name_control_character"),
        ("scan\n.pdf", "attachment.name_control_character"),
        ("scan\t.pdf", "attachment.name_control_character"),
        ("scan\x7f.pdf", "attachment.name_control_character"),
        ("scan\x85.pdf", "attachment.name_control_character"),
        ("invoice\u202efdp.exe", "attachment.name_bidi_control"),
        ("invoice\u2067.pdf", "attachment.name_bidi_control"),
        ("invoice\u200f.pdf", "attachment.name_bidi_control"),
        ("scan.pdf.", "attachment.name_trailing_dot_or_space"),
        ("scan.pdf ", "attachment.name_trailing_dot_or_space"),
        (".pdf", "attachment.name_empty_stem"),
        (" .pdf", "attachment.name_empty_stem"),
        ("a" * 252 + ".pdf", "attachment.name_too_long"),
        ("é" * 126 + ".pdf", "attachment.name_too_long"),
        ("CON", "attachment.name_device"),
        ("con.txt", "attachment.name_device"),
        ("NUL.tar.pdf", "attachment.name_device"),
        ("Com1.pdf", "attachment.name_device"),
        ("lpt9.pdf", "attachment.name_device"),
        ("COM\u00b9.pdf", "attachment.name_device"),
        ("AUX .pdf", "attachment.name_device"),
        ("scan\udcff.pdf", "attachment.name_invalid_unicode"),
        ("", "attachment.name_empty"),
    ],
)
def test_bad_names_are_refused_with_their_own_code(name: str, code: str) -> None:
    """AT-4: each kind of bad name has a stable code."""
    assert code in codes(name)


@pytest.mark.parametrize(
    "name",
    [
        "Smith, John - panoramic x-ray (2024).jpg",
        "a" * 251 + ".pdf",
        "é" * 125 + ".pdf",
        "Zahnarzt Befund März.pdf",
        "診断書.pdf",
        "Console.txt",
        "COM10.txt",
        "nul-results.pdf",
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467.jpg",
        "report.v2.final.docx",
    ],
)
def test_ordinary_names_pass(name: str) -> None:
    """AT-4: what the rules do not forbid is allowed (Unicode, long names up to 255 bytes)."""
    assert codes(name) == set()


def test_a_name_reports_every_problem_at_once() -> None:
    """AT-4, AT-6: all problems of a name are listed, not just the first."""
    found = codes("../co\u202en\0.exe ")
    assert found >= {
        "attachment.name_separator",
        "attachment.name_dot_dot",
        "attachment.name_bidi_control",
        "attachment.name_control_character",
        "attachment.name_trailing_dot_or_space",
        "attachment.extension_not_allowed",
    }


def test_the_extension_is_the_last_suffix_only() -> None:
    """AT-4: ``scan.pdf.exe`` is an .exe."""
    policy = AttachmentPolicy()
    assert policy.extension("scan.pdf.exe") == ".exe"
    assert policy.extension("archive.TAR.GZ") == ".gz"
    assert policy.extension("noextension") is None
    assert policy.extension("trailing.") is None


NAMES = st.one_of(
    ANY_TEXT,
    st.text(
        st.one_of(
            st.sampled_from(list("/\\\0\n\r\x1b\x7f.: ") + list(BIDI)),
            st.characters(codec="utf-8"),
        ),
        max_size=40,
    ).map(lambda s: s + ".pdf"),
)


def forbidden(name: str) -> bool:
    return (
        "/" in name
        or "\\" in name
        or any(unicodedata.category(c) == "Cc" for c in name)
        or any(c in BIDI for c in name)
    )


@given(NAMES)
def test_the_validator_never_raises_and_never_accepts_a_forbidden_name(name: str) -> None:
    """AT-4: for every name, no exception, and separators, controls and bidi are refused."""
    report = AttachmentPolicy().check([Attachment(name=name, content=b"plain text")])
    if forbidden(name):
        assert not report.ok
        assert set(report.codes) & {
            "attachment.name_separator",
            "attachment.name_control_character",
            "attachment.name_bidi_control",
        }


@given(st.text(st.characters(codec="utf-8", exclude_characters="./\\:"), min_size=1), NAMES)
def test_only_listed_extensions_pass(stem: str, suffix: str) -> None:
    """AT-1: whatever the name, one whose last suffix is not listed is refused."""
    name = f"{stem}.{suffix.rpartition('.')[2]}"
    extension = "." + name.rpartition(".")[2].lower()
    report = AttachmentPolicy().check([Attachment(name=name, content=b"")])
    if extension not in AttachmentRules().allowed_extensions:
        assert "attachment.extension_not_allowed" in report.codes
