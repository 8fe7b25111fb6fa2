"""Tests of the SIE 4 reader and writer (bookkeeping/sie.py). Plain pytest: no Django, no database."""

import dataclasses
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bookkeeping import sie
from bookkeeping.sie import SieError, SieRow, SieVoucher

SIE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "sie"
MISSING = f"the SIE test files are not there: {SIE_DIR}"

# Voucher counts: sie4.md §8.1 where it gives them, the others counted by hand (grep -c '#VER').
VOUCHER_COUNTS = {
    "BL0001_typ4.SE": 84,
    "BL0001_typ4I.SI": 1,
    "Exempelbolaget_SIE_110322_B_33.si": 13,
    "FAKT.SI": 1,
    "MAMUT_SIE4_EXPORT.SE": 168,
    "Norstedts_Bokslut_SIE_4I.si": 2,
    "SIE4_Exempelfil_med_underdim.SE": 295,
    "Sie4.se": 70,
    "Sie4.si": 165,
    "Test4.SE": 167,
    "magenta_bokforing_SIE4E.se": 19,
    "magenta_bokforing_SIE4I.se": 19,
    "si.SI": 47,
    "sie_4.SE": 20,
    "transaktioner_ovnbolag.se": 163,
    "typ4.se": 81,
    "typ4si.si": 81,
    "urval_ovnbolag.si": 16,
}
# name -> (how the voucher is named, line of its #VER, what its rows sum to)
UNBALANCED = {
    "transaktioner_ovnbolag-bad-balance.se": ("B 1 (2011-01-07)", 3905, "-12771.00"),
    "XE_SIE_4_20151125095119.SE": ("1 1 (2015-09-12)", 1356, "2.00"),
}


def _names() -> list[str]:
    if not SIE_DIR.is_dir():
        return []
    return sorted(p.name for p in SIE_DIR.iterdir() if p.suffix.lower() in (".se", ".si"))


def _readable():
    """Parameters: every test file that must read (one skipped parameter when the files are missing)."""
    if not SIE_DIR.is_dir():
        return [pytest.param("missing", marks=pytest.mark.skip(reason=MISSING))]
    return [n for n in _names() if n not in UNBALANCED]


def _bytes(name: str) -> bytes:
    if not SIE_DIR.is_dir():
        pytest.skip(MISSING)
    return (SIE_DIR / name).read_bytes()


def _sie(body: str, encoding: str = "cp437") -> bytes:
    head = '#FLAGGA 0\n#PROGRAM "Test" 1\n#FORMAT PC8\n#GEN 20240101\n#SIETYP 4\n#FNAMN "Test AB"\n'
    return (head + body).encode(encoding)


def _errors(data: bytes) -> list[tuple[int, str]]:
    with pytest.raises(SieError) as info:
        sie.read(data)
    return info.value.errors


def _normalised(voucher: SieVoucher) -> SieVoucher:
    """What a voucher looks like after the writer's documented text cleaning."""
    c = sie.clean_text
    rows = tuple(
        dataclasses.replace(
            r, account=c(r.account), text=c(r.text), objects=tuple((c(d), c(o)) for d, o in r.objects)
        )
        for r in voucher.rows
    )
    return dataclasses.replace(
        voucher, series=c(voucher.series), number=c(voucher.number), text=c(voucher.text), rows=rows
    )


# --------------------------------------------------------------------------------------------
# Real files


def test_the_test_data_is_complete():
    if not SIE_DIR.is_dir():
        pytest.skip(MISSING)
    assert set(_names()) == set(VOUCHER_COUNTS) | set(UNBALANCED)


@pytest.mark.parametrize("name", _readable())
def test_every_real_file_reads(name):
    parsed = sie.read(_bytes(name))
    assert len(parsed.vouchers) == VOUCHER_COUNTS[name]
    assert parsed.sie_type == "4"
    assert parsed.company_name
    for voucher in parsed.vouchers:
        assert voucher.rows
        assert sum(r.amount for r in voucher.rows) == 0
        assert all(r.amount == r.amount.quantize(Decimal("0.01")) for r in voucher.rows)


@pytest.mark.parametrize("name", sorted(UNBALANCED))
def test_unbalanced_real_files_are_refused_naming_the_voucher(name):
    label, line, total = UNBALANCED[name]
    errors = _errors(_bytes(name))
    assert errors == [(line, f"Voucher {label} does not balance: the rows sum to {total}")]


def test_unbalanced_error_message_reads_well():
    with pytest.raises(SieError) as info:
        sie.read(_bytes("transaktioner_ovnbolag-bad-balance.se"))
    assert (
        str(info.value) == "line 3905: Voucher B 1 (2011-01-07) does not balance: the rows sum to -12771.00"
    )
    assert isinstance(info.value, ValueError)


def test_largest_file_reads():
    # How fast is measured by bench/import_scale.py, not here (no timed assertions in the suite).
    data = _bytes("transaktioner_ovnbolag.se")
    assert sie.read(data).vouchers


def test_header_of_a_4e_file():
    parsed = sie.read(_bytes("BL0001_typ4.SE"))
    assert parsed.encoding == "cp437"
    assert parsed.program == ("BL Administration", "2011.2.102")
    assert parsed.format == "PC8"
    assert parsed.gen_date == date(2011, 11, 1)
    assert parsed.org_number == "556265-1892"
    assert parsed.fnr == "0001"
    assert parsed.company_name == "SEEE Speak Easy Executive English AB"
    assert parsed.fiscal_years == {
        0: (date(2009, 7, 1), date(2010, 6, 30)),
        -1: (date(2008, 7, 1), date(2009, 6, 30)),
    }
    assert parsed.chart_type == "EUBAS97"
    assert parsed.dimensions == {"1": "Kostnadsställe", "2": "Kostnadsbärare", "6": "Projekt"}
    assert parsed.objects[("1", "10")] == "Östervåla"
    assert parsed.accounts["1930"] == "Checkräkning"
    assert parsed.currency == "SEK"


def test_rtrans_replaces_its_trans_copy_and_btrans_is_ignored():
    parsed = sie.read(_bytes("BL0001_typ4.SE"))
    rows = [r for v in parsed.vouchers for r in v.rows]
    # 405 #TRANS + 6 #RTRANS - the 6 #TRANS copies; the 3 #BTRANS rows are left out
    assert len(rows) == 405
    vouchers = {(v.series, v.number, v.date): v for v in parsed.vouchers}
    a25 = vouchers[("A", "25", date(2010, 1, 22))]
    assert [(r.account, r.amount, r.objects, r.line_no) for r in a25.rows] == [
        ("1930", Decimal("1000.00"), (), 723),
        ("1680", Decimal("-1000.00"), (), 724),
        ("1930", Decimal("500.00"), (), 725),  # the #RTRANS, not the #TRANS on line 726
        ("3010", Decimal("-500.00"), (("1", "1"),), 727),
    ]
    assert a25.rows[2].trans_date == date(2010, 3, 26)
    a8 = vouchers[("A", "8", date(2009, 12, 10))]
    # #BTRANS 1930 -1000, 2640 200 and 4010 800 are removed rows; their #RTRANS replacements are 0
    assert [(r.account, r.amount, r.line_no) for r in a8.rows] == [
        ("1930", Decimal("0.00"), 615),
        ("2640", Decimal("0.00"), 618),
    ]


def test_rtrans_and_btrans_in_a_tab_separated_file():
    parsed = sie.read(_bytes("sie_4.SE"))
    b14 = next(v for v in parsed.vouchers if (v.series, v.number) == ("B", "14"))
    assert [(r.account, r.amount) for r in b14.rows] == [
        ("2641", Decimal("16.81")),
        ("1920", Decimal("-157.00")),
        ("7690", Decimal("140.19")),
    ]


def test_object_lists_give_cost_centre_and_project():
    parsed = sie.read(_bytes("BL0001_typ4.SE"))
    row = next(r for v in parsed.vouchers for r in v.rows if r.line_no == 727)
    assert row.objects == (("1", "1"),)
    assert row.cost_centre == "1"
    assert row.project is None
    sie4 = sie.read(_bytes("Sie4.se"))
    row = next(r for v in sie4.vouchers for r in v.rows if r.line_no == 1042)
    assert row.objects == (("1", "654321"), ("6", "665829"))
    assert (row.cost_centre, row.project) == ("654321", "665829")
    mamut = sie.read(_bytes("MAMUT_SIE4_EXPORT.SE"))
    row = mamut.vouchers[0].rows[2]
    assert row.objects == (("8", "30083"), ("1", "2"), ("10", "12"))
    assert (row.cost_centre, row.object_for("8")) == ("2", "30083")


def test_4i_files_with_empty_series_or_number():
    bl = sie.read(_bytes("BL0001_typ4I.SI")).vouchers[0]
    assert (bl.series, bl.number, bl.date, bl.text) == ("", "0", date(2011, 8, 24), "Kundfakt 2452 - 2455")
    assert sie.read(_bytes("BL0001_typ4I.SI")).fiscal_years == {0: (None, None)}
    fakt = sie.read(_bytes("FAKT.SI"))
    assert fakt.company_name == "Övningsbolaget AB"
    voucher = fakt.vouchers[0]
    assert (voucher.series, voucher.number) == ("B", "")
    assert voucher.rows[0].trans_date is None  # written ""
    assert voucher.rows[0].text == "Faktnr: 891, Namn: Karl Svensson"
    exempel = sie.read(_bytes("Exempelbolaget_SIE_110322_B_33.si"))
    assert {(v.series, v.number) for v in exempel.vouchers} == {("B", "")}


def test_quoted_and_numeric_series():
    assert [(v.series, v.number) for v in sie.read(_bytes("Sie4.si")).vouchers[:2]] == [
        ("A", "1"),
        ("A", "2"),
    ]
    assert (
        sie.read(_bytes("typ4.se")).vouchers[0].series,
        sie.read(_bytes("Test4.SE")).vouchers[0].series,
    ) == (
        "0",
        "11",
    )


def test_underdim_valuta_and_utf8_detection_on_the_visma_file():
    parsed = sie.read(_bytes("SIE4_Exempelfil_med_underdim.SE"))
    # the file is UTF-8 (all its Swedish letters were already replaced by U+FFFD)
    assert parsed.encoding == "utf-8"
    assert parsed.company_name == "\ufffdvningsbolaget AB"
    assert len(parsed.dimensions) == 4  # 2 #DIM + 2 #UNDERDIM
    assert parsed.currency == "SEK"


def test_stray_quotes_and_unclosed_text_quotes_in_real_files():
    xe = _bytes("XE_SIE_4_20151125095119.SE").replace(b"1010 { } 12.00", b"1010 { } 10.00")
    parsed = sie.read(xe)
    assert parsed.accounts["1684"] == 'Fordringar hos leverant"r'
    assert parsed.accounts["2440"] == 'Leverant"rsskulder'
    assert parsed.accounts["2153"] == 'Ack "veravskr, mask,inv,t'
    sie4 = sie.read(_bytes("Sie4.se"))
    row = next(r for v in sie4.vouchers for r in v.rows if r.line_no == 1041)
    assert row.text == "260    aaaaaaaaaaaaaaaa"
    assert sie4.warnings == [(1041, "a text is missing its closing quote (and 2 more lines)")]


def test_ksumma_and_tabs_in_norstedts():
    parsed = sie.read(_bytes("Norstedts_Bokslut_SIE_4I.si"))
    assert parsed.program == ("Norstedts Bokslut", "2011.2.1")
    assert parsed.org_number == "556639-1537"
    assert [(v.series, v.number) for v in parsed.vouchers] == [("A", "52"), ("A", "53")]


# --------------------------------------------------------------------------------------------
# Syntax cases (synthetic)


def test_spec_example_with_empty_series_and_number():
    parsed = sie.read(
        _sie(
            '#VER "" "" 20080101 "Postage"\n{\n #TRANS 1910 {} -1000.00\n #TRANS 2640 {} 200.00\n'
            " #TRANS 6250 {} 800.00\n}\n"
        )
    )
    (voucher,) = parsed.vouchers
    assert (voucher.series, voucher.number, voucher.date, voucher.text) == (
        "",
        "",
        date(2008, 1, 1),
        "Postage",
    )
    assert [r.amount for r in voucher.rows] == [Decimal("-1000.00"), Decimal("200.00"), Decimal("800.00")]
    assert voucher.line_no == 7
    assert [r.line_no for r in voucher.rows] == [9, 10, 11]
    assert voucher.label == "without series/number (2008-01-01)"


def test_tabs_crlf_empty_lines_and_unquoted_fields():
    body = (
        "#VER\tA\t7\t20240105\tKaffe\t20240106\tsign\r\n\r\n{\t\r\n"
        '\t#TRANS\t1930\t{1\t"Nord"\t6\t"0001"}\t-100.5\t20240105\t"Kaffe och bullar"\t2\tsign\r\n'
        "\t#TRANS\t6071\t{ }\t100.50\r\n}\t\r\n"
    )
    (voucher,) = sie.read(_sie(body.replace("\n", "\r\n").replace("\r\r", "\r"))).vouchers
    assert (voucher.series, voucher.number, voucher.text, voucher.reg_date) == (
        "A",
        "7",
        "Kaffe",
        date(2024, 1, 6),
    )
    first, second = voucher.rows
    assert first == SieRow(
        "1930",
        Decimal("-100.50"),
        (("1", "Nord"), ("6", "0001")),
        date(2024, 1, 5),
        "Kaffe och bullar",
        Decimal(2),
    )
    assert (first.cost_centre, first.project) == ("Nord", "0001")
    assert (
        second.objects == () and second.trans_date is None and second.text == "" and second.quantity is None
    )


def test_empty_transdate_empty_quantity_and_unknown_trailing_fields():
    (voucher,) = sie.read(
        _sie(
            '#VER B 1 20240105 "x"\n{\n#TRANS 1930 {} -3.4 "" "" 0 "Kjell" extra more\n'
            '#TRANS 2440 {} 3.40 20240107 "" "" ""\n}\n'
        )
    ).vouchers
    assert [(r.trans_date, r.quantity, r.amount) for r in voucher.rows] == [
        (None, Decimal(0), Decimal("-3.40")),
        (date(2024, 1, 7), None, Decimal("3.40")),
    ]


def test_escapes_and_braces_on_their_own_lines():
    (voucher,) = sie.read(
        _sie(
            '#VER A 1 20240105 "Say \\"hi\\" \\\\ bye"\n{\n#TRANS 1930 {} 1 "" "C:\\dir\\file"\n'
            "#TRANS 2440 {} -1\n}\n"
        )
    ).vouchers
    assert voucher.text == 'Say "hi" \\ bye'
    assert voucher.rows[0].text == "C:\\dir\\file"


def test_unknown_labels_and_ksumma_are_ignored_also_inside_a_block():
    data = _sie(
        "#KSUMMA\n#MOMSKOD 2610 10\n"
        "#VER A 1 20240105 x\n{\n#TRANS 1930 {} 1\n#FOO bar\n#TRANS 2440 {} -1\n}\n"
        "#KSUMMA 1234567\n"
    )
    (voucher,) = sie.read(data).vouchers
    assert [r.account for r in voucher.rows] == ["1930", "2440"]


def test_underdim_and_objekt():
    data = _sie(
        '#DIM 1 "Avdelning"\n#UNDERDIM 21 "Grupp" 1\n#OBJEKT 1 "10" "Nord"\n#OBJEKT 21 G1 "Grupp ett"\n'
    )
    parsed = sie.read(data)
    assert parsed.dimensions == {"1": "Avdelning", "21": "Grupp"}
    assert parsed.objects == {("1", "10"): "Nord", ("21", "G1"): "Grupp ett"}
    assert parsed.vouchers == []


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("5", "5.00"),
        ("-52625.00", "-52625.00"),
        ("201278.6", "201278.60"),
        ("0.10", "0.10"),
        ("-0.00", "0.00"),
        ("1.500", "1.50"),
        (".5", "0.50"),
        ("28875,00", "28875.00"),
        ("-3,5", "-3.50"),
    ],
)
def test_amounts(written, amount):
    data = _sie(
        f"#VER A 1 20240105 x\n{{\n#TRANS 1930 {{}} {written}\n"
        f"#TRANS 2440 {{}} {Decimal(amount) * -1:f}\n}}\n"
    )
    parsed = sie.read(data)
    assert parsed.vouchers[0].rows[0].amount == Decimal(amount)
    assert str(parsed.vouchers[0].rows[0].amount) == amount
    assert bool(parsed.warnings) == ("," in written)


def test_decimal_comma_is_reported_as_a_warning():
    parsed = sie.read(_sie("#VER A 1 20240105 x\n{\n#TRANS 1930 {} 1,50\n#TRANS 2440 {} -1,50\n}\n"))
    assert parsed.warnings == [(9, "decimal comma instead of decimal point (and 1 more lines)")]


def test_utf8_input_is_detected():
    body = (
        '#FNAMN "Åkesson & Öberg AB"\n'
        '#VER A 1 20240105 "Fika på café"\n{\n#TRANS 1930 {} -1\n#TRANS 7690 {} 1\n}\n'
    )
    for data, encoding in [
        (_sie(body, "utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + _sie(body, "utf-8"), "utf-8-sig"),
        (_sie(body, "cp437"), "cp437"),
        (_sie(body, "utf-16"), "utf-16"),
    ]:
        parsed = sie.read(data)
        assert parsed.encoding == encoding
        assert parsed.company_name == "Åkesson & Öberg AB"
        assert parsed.vouchers[0].text == "Fika på café"


def test_pure_ascii_is_reported_as_cp437():
    assert sie.read(_sie("")).encoding == "cp437"


def test_rtrans_without_its_trans_copy_keeps_both_rows_and_warns():
    data = _sie("#VER A 1 20240105 x\n{\n#TRANS 1930 {} 100\n#RTRANS 2440 {} -60\n#TRANS 2440 {} -40\n}\n")
    parsed = sie.read(data)
    assert [r.amount for r in parsed.vouchers[0].rows] == [
        Decimal("100.00"),
        Decimal("-60.00"),
        Decimal("-40.00"),
    ]
    assert parsed.warnings == [(10, "#RTRANS not followed by an identical #TRANS")]


def test_trans_without_object_list_is_tolerated():
    parsed = sie.read(_sie("#VER A 1 20240105 x\n{\n#TRANS 1930 100 20240105 text\n#TRANS 2440 {} -100\n}\n"))
    row = parsed.vouchers[0].rows[0]
    assert (row.objects, row.amount, row.trans_date, row.text) == (
        (),
        Decimal("100.00"),
        date(2024, 1, 5),
        "text",
    )
    assert parsed.warnings == [(9, "#TRANS without an object list {}")]


# --------------------------------------------------------------------------------------------
# Malformed files: every problem, with its line, and nothing partial


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("#TRANS 1930 {} 100\n", [(7, "#TRANS outside a #VER block")]),
        (
            "#VER A 1 20240105 x\n#TRANS 1930 {} 1\n",
            [(7, "#VER is not followed by a '{' line with its rows"), (8, "#TRANS outside a #VER block")],
        ),
        ("#VER A 1 20240105 x\n", [(7, "#VER is not followed by a '{' line with its rows")]),
        (
            "#VER A 1 20240105 x\n{\n#TRANS 1930 {} 1\n#TRANS 2440 {} -1\n",
            [(8, "'{' opened at line 8 is not closed")],
        ),
        (
            (
                "#VER A 1 20240105 x\n{\n#TRANS 1930 {} 1\n#TRANS 2440 {} -1\n"
                "#VER A 2 20240105 y\n{\n#TRANS 1930 {} 0\n}\n"
            ),
            [(8, "'{' opened at line 8 is not closed")],
        ),
        ("#VER A 1 20240105 x\n{\n}\n", [(7, "Voucher A 1 (2024-01-05) has no rows")]),
        (
            "#VER A 1 20241305 x\n{\n#TRANS 1930 {} 0\n}\n",
            [(7, "#VER: bad voucher date '20241305' (expected YYYYMMDD)")],
        ),
        (
            "#VER A 1 2024-01-05 x\n{\n#TRANS 1930 {} 0\n}\n",
            [(7, "#VER: bad voucher date '2024-01-05' (expected YYYYMMDD)")],
        ),
        ('#VER A 1 "" x\n{\n#TRANS 1930 {} 0\n}\n', [(7, "#VER: missing voucher date")]),
        (
            "#VER A 1 20240105 x\n{\n#TRANS 1930 {} 1 20240230\n#TRANS 2440 {} -1\n}\n",
            [(9, "#TRANS: bad transaction date '20240230' (expected YYYYMMDD)")],
        ),
        (
            "#VER A 1 20240105 x\n{\n#TRANS 1930 {} 1.005\n#TRANS 2440 {} -1.005\n}\n",
            [
                (9, "#TRANS: bad amount '1.005' (more than 2 decimals)"),
                (10, "#TRANS: bad amount '-1.005' (more than 2 decimals)"),
            ],
        ),
        (
            "#VER A 1 20240105 x\n{\n#TRANS 1930 {} 1,234\n#TRANS 2440 {} 1e3\n#TRANS 2440 {} 1,234.50\n}\n",
            [
                (9, "#TRANS: bad amount '1,234'"),
                (10, "#TRANS: bad amount '1e3'"),
                (11, "#TRANS: bad amount '1,234.50'"),
            ],
        ),
        (
            "#VER A 1 20240105 x\n{\n#TRANS 1930 {}\n#TRANS {} 1\n}\n",
            [(9, "#TRANS: missing amount"), (10, "#TRANS: unexpected object list where the account belongs")],
        ),
        (
            '#VER A 1 20240105 x\n{\n#TRANS 1930 {} "100.00\n#TRANS 2440 {} -100\n}\n',
            [(9, "#TRANS: unbalanced quotes")],
        ),
        (
            '#VER A 1 20240105 x\n{\n#TRANS 1930 {1 "Nord} 100\n#TRANS 2440 {} -100\n}\n',
            [(9, "#TRANS: unbalanced quotes in an object list")],
        ),
        (
            "#VER A 1 20240105 x\n{\n#TRANS 1930 {1 Nord 100\n#TRANS 2440 {1} -100\n}\n",
            [
                (9, "#TRANS: unclosed '{' in an object list"),
                (10, "#TRANS: the object list must hold pairs of dimension and object"),
            ],
        ),
        (
            "#VER A 1 20240105 x\n{\n#TRANS 1930 {} 100\n#TRANS 2440 {} -90\n}\n",
            [(7, "Voucher A 1 (2024-01-05) does not balance: the rows sum to 10.00")],
        ),
        (
            "}\n{\n#TRANS 1930 {} 1\n}\n",
            [(7, "'}' without a matching '{'"), (8, "'{' without a #VER before it")],
        ),
        ("#VER A 1 20240105 x\n{\n{\n#TRANS 1930 {} 0\n}\n", [(9, "'{' inside the block opened at line 8")]),
        (
            "#RAR 0 20240101 2024123\n#GEN 2024\n",
            [
                (7, "#RAR: bad end date '2024123' (expected YYYYMMDD)"),
                (8, "#GEN: bad date '2024' (expected YYYYMMDD)"),
            ],
        ),
        (
            "#KONTO\nKONTO 1930 Bank\n",
            [(7, "#KONTO: missing account"), (8, "expected a #label, found 'KONTO 1930 Bank'")],
        ),
    ],
)
def test_malformed_files_are_refused_with_line_numbers(body, expected):
    assert _errors(_sie(body)) == expected


def test_all_problems_are_reported_together_and_nothing_partial():
    body = (
        "#VER A 1 20240105 ok\n{\n#TRANS 1930 {} 1\n#TRANS 2440 {} -1\n}\n"  # 7: fine
        "#VER A 2 20240105 bad\n{\n#TRANS 1930 {} 1\n}\n"  # 12: unbalanced
        "#TRANS 1930 {} 5\n"  # 16: outside
        "#VER A 3 20240105 x\n{\n#TRANS 1930 {} abc\n}\n"  # 17, 19: bad amount
    )
    with pytest.raises(SieError) as info:
        sie.read(_sie(body))
    assert [line for line, _ in info.value.errors] == [12, 16, 19]
    assert str(info.value).startswith(
        "line 12: Voucher A 2 (2024-01-05) does not balance: the rows sum to 1.00; "
    )


def test_empty_and_non_sie_files_are_refused_clearly():
    assert _errors(b"") == [(0, "The file is empty.")]
    assert _errors(b"\r\n  \n") == [(0, "The file is empty.")]
    html = b"<!DOCTYPE HTML PUBLIC>\n<html><head><title>404 Not Found</title></head></html>\n"
    assert _errors(html) == [
        (0, "This is not a SIE file (it looks like an HTML page): SIE lines start with a #label.")
    ]
    assert str(pytest.raises(SieError, sie.read, b"Konto;Belopp\n1930;100\n").value) == (
        "This is not a SIE file: SIE lines start with a #label."
    )
    assert _errors(b"#HELLO world\n") == [(0, "This is not a SIE file: it has none of the SIE labels.")]
    assert _errors(b"PK\x03\x04\x00\x00#") == [(0, "This is not a SIE file: SIE lines start with a #label.")]


def test_many_errors_are_shortened_in_the_message_but_all_kept():
    body = "".join(f"#TRANS 1930 {{}} {i}\n" for i in range(30))
    with pytest.raises(SieError) as info:
        sie.read(_sie(body))
    assert len(info.value.errors) == 30
    assert str(info.value).endswith("; … and 10 more")


def test_reading_many_vouchers():
    voucher = (
        '#VER A {n} 20240105 "Text {n}"\n{{\n#TRANS 1930 {{1 "10"}} 100.00\n#TRANS 2440 {{}} -100.00\n}}\n'
    )
    data = _sie("".join(voucher.format(n=n) for n in range(20000)))  # ~1.4 MB; its speed: bench/import_scale.py
    parsed = sie.read(data)
    assert len(parsed.vouchers) == 20000 and parsed.vouchers[-1].number == "19999"
    assert parsed.vouchers[-1].rows[0].line_no == 6 + 5 * 19999 + 3  # six header lines, five per voucher


# --------------------------------------------------------------------------------------------
# Writer

PAYOUT = SieVoucher(
    series="A",
    number="",
    date=date(2024, 5, 8),
    text="Nets Easy utbetalning 1234567890",
    rows=(
        SieRow("1930", Decimal("120.94")),
        SieRow("6040", Decimal("4.06"), objects=(("1", "100"), ("6", "P1"))),
        SieRow("1580", Decimal("-125.00"), text="Köp 1", trans_date=date(2024, 5, 7)),
    ),
)


def _write(vouchers=(PAYOUT,), **kwargs) -> bytes:
    kwargs.setdefault("company_name", "Exempel AB")
    kwargs.setdefault("org_number", "556677-8899")
    kwargs.setdefault("gen_date", date(2024, 5, 8))
    return sie.write(vouchers=list(vouchers), **kwargs)


def test_writer_output_exactly():
    out = _write(
        fiscal_year=(date(2024, 1, 1), date(2024, 12, 31)),
        accounts={"1930": "Företagskonto", "6040": "Kontokortsavgifter"},
        objects={("1", "100"): "Butik Nord"},
    )
    assert out.decode("cp437") == (
        "#FLAGGA 0\n"
        '#PROGRAM "Kontera" 1.0\n'
        "#FORMAT PC8\n"
        "#GEN 20240508\n"
        "#SIETYP 4\n"
        "#ORGNR 556677-8899\n"
        '#FNAMN "Exempel AB"\n'
        "#RAR 0 20240101 20241231\n"
        '#KONTO 1580 "1580"\n'
        '#KONTO 1930 "Företagskonto"\n'
        '#KONTO 6040 "Kontokortsavgifter"\n'
        '#DIM 1 "Kostnadsställe"\n'
        '#DIM 6 "Projekt"\n'
        '#OBJEKT 1 "100" "Butik Nord"\n'
        '#OBJEKT 6 "P1" "P1"\n'
        '#VER A "" 20240508 "Nets Easy utbetalning 1234567890"\n'
        "{\n"
        '#TRANS 1930 {} 120.94 "" ""\n'
        '#TRANS 6040 {1 "100" 6 "P1"} 4.06 "" ""\n'
        '#TRANS 1580 {} -125.00 20240507 "Köp 1"\n'
        "}\n"
    )


def test_writer_encodes_cp437_without_ksumma_and_with_unquoted_header_values():
    out = _write(accounts={"1930": "Företagskonto"})
    assert "Företagskonto".encode("cp437") in out
    assert "ö".encode() not in out
    assert b"KSUMMA" not in out
    assert b"\r" not in out
    lines = out.decode("cp437").splitlines()
    for label in ("#FLAGGA", "#FORMAT", "#SIETYP", "#GEN", "#ORGNR"):
        (line,) = [ln for ln in lines if ln.startswith(label + " ")]
        assert '"' not in line, line
    assert "#ORGNR 556677-8899" in lines
    assert not any(
        ln.startswith(("#DIM", "#OBJEKT", "#RAR"))
        for ln in _write(
            [
                SieVoucher(
                    "A", "1", date(2024, 1, 1), rows=(SieRow("1930", Decimal(1)), SieRow("2440", Decimal(-1)))
                )
            ]
        )
        .decode("cp437")
        .splitlines()
    )


def test_writer_amount_format():
    rows = (
        SieRow("1930", Decimal(1000)),
        SieRow("2440", Decimal("-999.5")),
        SieRow("3740", Decimal("-0.50")),
        SieRow("3741", Decimal(0)),
        SieRow("3742", Decimal("-0.00")),
    )
    out = _write([SieVoucher("A", "1", date(2024, 1, 1), rows=rows)]).decode("cp437")
    amounts = re.findall(r"^#TRANS \S+ \{\} (\S+)", out, flags=re.MULTILINE)
    assert amounts == ["1000.00", "-999.50", "-0.50", "0.00", "0.00"]
    assert "+" not in out


def test_writer_escapes_and_transliterates():
    voucher = SieVoucher(
        series="A",
        number="1",
        date=date(2024, 1, 1),
        text='Kvitto "Café" – 100 € ’24\tnr\n2\x07',
        rows=(
            SieRow("1930", Decimal(1), text="C:\\temp\\", objects=(("1", 'Nord "1"'),)),
            SieRow("2440", Decimal(-1), text="Søren Ærø Šibenik 😀"),
        ),
    )
    out = _write([voucher])
    text = out.decode("cp437")
    assert '#VER A 1 20240101 "Kvitto \\"Café\\" - 100 EUR \'24 nr 2"' in text
    assert '#TRANS 1930 {1 "Nord \\"1\\""} 1.00 "" "C:\\temp\\\\"' in text
    assert '"Sören Ærö Sibenik ?"' in text
    (back,) = sie.read(out).vouchers
    assert back.text == 'Kvitto "Café" - 100 EUR \'24 nr 2'
    assert back.rows[0].text == "C:\\temp\\"
    assert back.rows[0].objects == (("1", 'Nord "1"'),)


def test_clean_text():
    assert sie.clean_text("a\tb\r\nc\x00d\x7fe") == "a b  cde"
    assert sie.clean_text("€ ‘x’ “y” a–b—c … ½ é") == "EUR 'x' \"y\" a-b-c ... ½ é"
    assert sie.clean_text("Ünïcödé ÅÄÖåäö", limit=5) == "Ünïcö"
    assert sie.clean_text("100 €", limit=5) == "100 E"


def test_writer_text_limit_applies_to_voucher_and_row_texts():
    long = "x" * 80
    voucher = SieVoucher(
        "A",
        "1",
        date(2024, 1, 1),
        text=long,
        rows=(SieRow("1930", Decimal(1), text=long), SieRow("2440", Decimal(-1))),
    )
    (back,) = sie.read(_write([voucher], text_limit=50, company_name=long)).vouchers
    assert back.text == "x" * 50
    assert back.rows[0].text == "x" * 50
    (back,) = sie.read(_write([voucher])).vouchers
    assert back.text == long


def test_writer_quotes_identifiers_only_when_needed():
    voucher = SieVoucher(
        "#", "", date(2024, 1, 1), rows=(SieRow("1930", Decimal(1)), SieRow("2440", Decimal(-1)))
    )
    out = _write([voucher]).decode("cp437")
    assert '#VER "#" "" 20240101 ""' in out
    assert "#TRANS 1930 {} 1.00" in out
    assert sie.read(out.encode("cp437")).vouchers[0].series == "#"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            (SieRow("1930", Decimal(100)), SieRow("2440", Decimal(-90))),
            "Voucher A 1 (2024-01-01) does not balance: the rows sum to 10.00",
        ),
        ((), "Voucher A 1 (2024-01-01) has no rows"),
        (
            (SieRow("1930", Decimal("1.005")), SieRow("2440", Decimal("-1.00"))),
            "Voucher A 1 (2024-01-01): amount 1.005 of account 1930 has more than 2 decimals",
        ),
        (
            (SieRow("1930", 0.1), SieRow("2440", Decimal("-0.1"))),
            "Voucher A 1 (2024-01-01): amount 0.1 of account 1930 is not a Decimal",
        ),
        ((SieRow("", Decimal(0)),), "Voucher A 1 (2024-01-01): a row has no account"),
    ],
)
def test_writer_refuses_bad_vouchers(rows, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        _write([SieVoucher("A", "1", date(2024, 1, 1), rows=rows)])


def test_writer_needs_vouchers_and_company():
    with pytest.raises(TypeError):
        sie.write(vouchers=[PAYOUT])
    with pytest.raises(ValueError):
        _write(sie_type="3")


def test_writer_takes_defaults_from_a_sie_file_and_keywords_override():
    parsed = sie.read(_bytes("BL0001_typ4.SE"))
    out = sie.write(parsed, company_name="Ny AB", gen_date=date(2024, 1, 2)).decode("cp437")
    assert '#FNAMN "Ny AB"' in out
    assert "#ORGNR 556265-1892" in out
    assert "#RAR 0 20090701 20100630" in out
    assert '#KONTO 1930 "Checkräkning"' in out
    assert '#OBJEKT 1 "1" "Stockholm"' in out
    assert '"Östervåla"' not in out  # objects no row uses are left out
    assert out.count("#VER ") == 84


# --------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("name", _readable())
def test_round_trip_of_real_files(name):
    original = sie.read(_bytes(name))
    written = sie.write(original)
    again = sie.read(written)
    assert again.encoding == "cp437"
    assert again.warnings == []
    assert again.vouchers == [_normalised(v) for v in original.vouchers]
    assert again.company_name == sie.clean_text(original.company_name)
    # a second round changes nothing
    assert sie.write(again, gen_date=again.gen_date) == written


def test_round_trip_compares_everything_that_matters():
    # guards the round-trip test itself: a changed field must make vouchers differ
    row = PAYOUT.rows[1]
    for change in [
        {"account": "6041"},
        {"amount": Decimal("4.07")},
        {"objects": (("1", "100"),)},
        {"trans_date": date(2024, 1, 1)},
        {"text": "x"},
        {"quantity": Decimal(1)},
    ]:
        assert dataclasses.replace(row, **change) != row
    assert dataclasses.replace(row, line_no=99) == row


def test_round_trip_of_synthetic_vouchers():
    vouchers = [
        PAYOUT,
        SieVoucher(
            series="LEV1",
            number="42",
            date=date(2024, 12, 31),
            text='Åhléns "Öppet köp" åäöÅÄÖé',
            reg_date=date(2025, 1, 3),
            rows=(
                SieRow(
                    "4010",
                    Decimal("1234567.89"),
                    (("1", "Väst"), ("6", "Projekt 7")),
                    date(2024, 12, 30),
                    'Inköp \\ "special"',
                    Decimal("2.5"),
                ),
                SieRow("2640", Decimal("0.11")),
                SieRow(
                    "2440",
                    Decimal("-1234568.00"),
                    (),
                    None,
                    "Leverantör ÅÄÖ",
                    Decimal(-1),
                ),
            ),
        ),
        SieVoucher(
            "", "", date(2024, 1, 1), rows=(SieRow("1910", Decimal(-1000)), SieRow("6250", Decimal(1000)))
        ),
    ]
    out = _write(vouchers, objects={("1", "Väst"): "Region Väst"})
    parsed = sie.read(out)
    assert parsed.vouchers == vouchers
    assert parsed.objects[("1", "Väst")] == "Region Väst"
    assert parsed.dimensions == {"1": "Kostnadsställe", "6": "Projekt"}
    row = parsed.vouchers[1].rows[0]
    assert (row.cost_centre, row.project) == ("Väst", "Projekt 7")


# --------------------------------------------------------------------------------------------
# Layering


def test_the_module_does_not_import_django():
    root = Path(__file__).resolve().parents[2]
    code = "import sys; import bookkeeping.sie; print('django' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"

