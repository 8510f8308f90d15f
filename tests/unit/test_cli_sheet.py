"""`lockstock export` / `lockstock reconcile` without a broker: help, one-line errors for bad
input, the dry run (which needs no cluster) on CSV and xlsx sheets, and the workbook's layout."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from apps.cli import cli
from apps.cli import sheet as sheet_cli  # noqa: F401  (registers export and reconcile)
from apps.sheet import COLUMNS, sheet_rows, to_csv
from lockstock.catalog import load_catalog
from streams.engine.commands import apply_command
from tests.builders import inventory_command

SHEET = "20261124T201500Z-3fa9"
NO_CLUSTER = {"KAFKA_BOOTSTRAP_SERVERS": ""}
UNREACHABLE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env or NO_CLUSTER)


def exported_rows():
    state, _, _ = apply_command(None, inventory_command("SET_STOCK", "s", sku="RING", issued_at=0, total=100),
                                load_catalog(), 0)
    return sheet_rows({"RING": state}, load_catalog(), SHEET, 1_795_000_000_000)


def write_sheet(path, sales: dict[str, str]):
    """The exported sheet of one SKU with sold_offline filled in per channel."""
    rows = [{**row, "sold_offline": sales.get(row["channel"], "")} for row in exported_rows()]
    path.write_text(to_csv(rows))
    return path


@pytest.mark.parametrize("command, expected", [
    (["export", "--help"], "--csv"),
    (["export", "--help"], "--xlsx"),
    (["export", "--help"], "--force"),
    (["export", "--help"], "share their region's free units"),
    (["reconcile", "--help"], "--dry-run"),
    (["reconcile", "--help"], "--timeout"),
    (["reconcile", "--help"], "--json"),
    (["reconcile", "--help"], "changes nothing"),
])
def test_help_texts(command, expected):
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    assert expected in " ".join(result.output.split())


def test_export_checks_its_arguments_before_anything_else(tmp_path):
    existing = tmp_path / "sheet.csv"
    existing.write_text("sales someone typed in")
    cases = [
        ([], "give --csv FILE and/or --xlsx FILE"),
        (["--csv", str(existing)], "exists and may hold sales already entered; pass --force"),
        (["--csv", str(tmp_path / "a"), "--xlsx", str(tmp_path / "a")], "--csv and --xlsx name the same file"),
        (["--csv", str(tmp_path / "new.csv")], "cannot export the engine's stock on a throwaway embedded broker"),
    ]
    for args, message in cases:
        result = invoke("export", *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert existing.read_text() == "sales someone typed in"


def test_reconcile_checks_its_arguments(tmp_path):
    sheet = write_sheet(tmp_path / "s.csv", {"tiktok-us": "2"})
    cases = [
        ([], "give the filled-in sheet: --csv FILE or --xlsx FILE"),
        (["--csv", str(sheet), "--xlsx", str(sheet)], "give the filled-in sheet: --csv FILE or --xlsx FILE"),
        (["--csv", str(sheet), "--timeout", "0"], "--timeout must be >= 1, got 0"),
        (["--csv", str(sheet), "--timeout", "soon"], "--timeout must be a whole number, got 'soon'"),
        (["--csv", str(sheet), "--timeout", "9999"], "--timeout must be <= 3600, got 9999"),
        (["--csv", str(sheet)], "cannot reconcile manual sales on a throwaway embedded broker"),
        (["--csv", str(tmp_path / "missing.csv"), "--dry-run"], "cannot read"),
    ]
    for args, message in cases:
        result = invoke("reconcile", *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_unreadable_files_are_one_line_errors(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sheet_id,sku\n20261124,CAFÉ\n".encode("latin-1"))
    not_a_workbook = tmp_path / "sheet.xlsx"
    not_a_workbook.write_text("sheet_id,sku\n")
    result = invoke("reconcile", "--csv", str(latin), "--dry-run")
    assert result.exit_code == 1 and "is not UTF-8 text; save the sheet as 'CSV UTF-8'" in result.output
    result = invoke("reconcile", "--xlsx", str(not_a_workbook), "--dry-run")
    assert result.exit_code == 1 and "is not an Excel workbook (.xlsx)" in result.output


def test_dry_run_prints_the_plan_and_the_rows_it_leaves_out(tmp_path):
    sheet = write_sheet(tmp_path / "s.csv", {"tiktok-us": "3", "shopee-my": "-2", "tiktok-eu": "1"})
    result = invoke("reconcile", "--csv", str(sheet), "--dry-run")
    assert result.exit_code == 1, result.output  # a row cannot be applied
    lines = sheet.read_text().splitlines()
    bad_row = next(n for n, line in enumerate(lines, 1) if ",shopee-my," in line)
    assert f"row {bad_row}: sold_offline must be a whole number >= 0, got '-2'" in result.output
    assert f"manual:{SHEET}:tiktok-us:RING:1 .. :3" in result.output
    assert f"would send 4 single-unit orders from {len(lines) - 2} rows; nothing was sent" in result.output

    clean = write_sheet(tmp_path / "clean.csv", {"tiktok-us": "3"})
    result = invoke("reconcile", "--csv", str(clean), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["sheet_id"] == SHEET and plan["dry_run"] is True and plan["units"] == 3 and plan["errors"] == []
    us = next(r for r in plan["rows"] if r["channel"] == "tiktok-us")
    assert us["units"] == 3 and us["region"] == "US"


def test_a_bad_header_is_reported_not_raised(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("sku,channel,sold offline\nRING,tiktok-us,3\n")
    result = invoke("reconcile", "--csv", str(sheet), "--json", env=UNREACHABLE)  # nothing valid: Kafka is not asked
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["rows"] == [] and report["errors"][0]["row"] == 1
    assert "unknown column(s) sold offline" in report["errors"][0]["reason"]


def test_unreachable_cluster_is_one_line(tmp_path):
    sheet = write_sheet(tmp_path / "s.csv", {"tiktok-us": "1"})
    result = invoke("reconcile", "--csv", str(sheet), env=UNREACHABLE)
    assert result.exit_code == 1 and "cannot reach Kafka at 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


def test_the_workbook_is_readable_and_reads_back(tmp_path):
    from openpyxl import load_workbook

    path = tmp_path / "sheet.xlsx"
    sheet_cli._write_xlsx(path, exported_rows())
    book = load_workbook(path)
    page = book.active
    assert [c.value for c in page[1]] == list(COLUMNS)
    assert all(c.font.bold for c in page[1]) and page.freeze_panes == "A2"
    assert page.column_dimensions["A"].width >= len(SHEET)
    assert page.cell(2, COLUMNS.index("may_sell") + 1).value == exported_rows()[0]["may_sell"]  # a number, not text
    sold = COLUMNS.index("sold_offline") + 1
    for row in range(2, page.max_row + 1):  # the operator types the sales in, as numbers
        channel = page.cell(row, COLUMNS.index("channel") + 1).value
        page.cell(row, sold).value = {"tiktok-us": 2, "shopee-th": 1.0}.get(channel)
    book.save(path)
    result = invoke("reconcile", "--xlsx", str(path), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["units"] == 3
    assert {r["channel"]: r["units"] for r in plan["rows"] if r["units"]} == {"tiktok-us": 2, "shopee-th": 1}
