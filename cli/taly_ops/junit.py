"""The JUnit XML renderer of a drill report (`taly drill restore --junit`): for CI, beside the JSON and the table."""

from __future__ import annotations

from typing import Any


def junit_xml(report: dict[str, Any]) -> bytes:
    """The verification as JUnit XML: a check that did not run (the drill stopped first) is skipped, not failed."""
    import xml.etree.ElementTree as ET

    cases: list[tuple[str, str, bool | None, str]] = []  # (classname, name, passed or None: not run, message)
    ver = report["verification"]
    stopped = f"not run: the drill stopped first ({report['error']})" if report.get("error") else "not run"
    for f in ver["files"]:
        cases.append(("files", f["file"], f["passed"], f.get("problem", "")))
    schema = ver["schema"]
    if "fingerprint" not in schema:
        cases.append(("schema", "schema fingerprint", None, stopped))
    else:
        cases.append(("schema", "schema fingerprint", bool(ver["schema_passed"]), schema.get("error") or
                      f"differing tables: {', '.join(schema.get('differing_tables') or []) or 'none named'}"))
    for t in ver["tables"]:
        cases.append(("tables", t["table"], t["passed"], f"rows {t['rows']} (expected {t['expected_rows']}), "
                                                         f"checksum {t['checksum']} (expected {t['expected_checksum']})"))
    for i in ver["invariants"]:
        cases.append(("invariants", i["name"], i["passed"], i.get("error") or f"{i['violations']} violations"))
    for s in ver["smoke"]:
        cases.append(("smoke", s["name"], s["passed"], s.get("error") or f"{s['rows']} rows, need {s.get('min_rows')}"))
    tg = report["targets"]
    cases.append(("targets", "rpo", bool(tg["rpo_met"]), f"RPO {report['rpo_seconds']}s > target {tg['rpo_seconds']}s"))
    rto_measured = report["rto_seconds"] is not None
    cases.append(("targets", "rto", bool(tg["rto_met"]) if rto_measured else None,
                  f"RTO {report['rto_seconds']}s > target {tg['rto_seconds']}s" if rto_measured else
                  f"RTO not measured: {stopped}"))
    if report.get("error"):
        cases.append(("drill", "completed", False, report["error"]))
    failures = sum(1 for c in cases if c[2] is False)
    skipped = sum(1 for c in cases if c[2] is None)
    suite = ET.Element("testsuite", name=f"taly.drill.{report['environment']}", tests=str(len(cases)),
                       failures=str(failures), errors="0", skipped=str(skipped),
                       time=str(report["timings"].get("total_seconds", 0)), timestamp=report["started_at"])
    props = ET.SubElement(suite, "properties")
    for k in ("drill_id", "backup_id", "restore_point_kind", "restore_point", "rpo_seconds", "rto_seconds", "status"):
        if report.get(k) is not None:
            ET.SubElement(props, "property", name=k, value=str(report[k]))
    for classname, name, passed, message in cases:
        case = ET.SubElement(suite, "testcase", classname=f"drill.{classname}", name=name)
        if passed is False:
            ET.SubElement(case, "failure", message=message).text = message
        elif passed is None:
            ET.SubElement(case, "skipped", message=message)
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)
