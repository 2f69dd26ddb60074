from tagship.builders import history, lock
from tagship.builders.history import Record


def rec(version: str, kind: str = "deploy", result: str = "succeeded") -> Record:
    return Record(version=version, image=f"reg/app:{version}", kind=kind, result=result, at="2026-11-26T07:00:00Z")


def test_history_round_trips_and_skips_damaged_lines() -> None:
    text = rec("v1").line() + "{broken\n" + rec("v2", result="failed").line() + '{"unrelated": 1}\n'
    assert [(r.version, r.result) for r in history.parse(text)] == [("v1", "succeeded"), ("v2", "failed")]


def test_previous_follows_deploy_order_not_tag_order_and_skips_failures() -> None:
    records = [rec("v1"), rec("v10"), rec("v2"), rec("v3", result="failed"), rec("v2", kind="rollback")]
    assert history.previous(records, "v2").version == "v10"  # type: ignore[union-attr]
    assert history.previous(records, "v10").version == "v1"  # type: ignore[union-attr]
    assert history.previous(records, "v1") is None
    assert history.previous(records, "unknown").version == "v2"  # type: ignore[union-attr]


def test_redeploying_a_version_moves_it_to_the_end_of_the_chain() -> None:
    records = [rec("v1"), rec("v2"), rec("v1")]
    assert [r.version for r in history.deployed_versions(records)] == ["v2", "v1"]


def test_find_returns_the_latest_successful_record() -> None:
    records = [rec("v1"), rec("v2", result="failed")]
    assert history.find(records, "v2") is None
    assert history.find(records, "v1") == records[0]


def test_audit_text_travels_on_stdin_not_argv() -> None:
    cmd = history.audit("/srv/app", "alice; rm -rf / deploy v1 started\nsecond line")
    assert "alice" not in " ".join(cmd.argv)
    assert cmd.stdin == b"alice; rm -rf / deploy v1 started second line\n"


def test_lock_holder_and_status_parsing() -> None:
    holder = lock.Holder(
        token="t",
        who="Alice (alice@laptop)",
        host="laptop",
        pid=42,
        command="deploy",
        version="v1.4.2",
        since="2026-11-26T10:02:00Z",
    )
    cmd = lock.acquire("/srv/app", holder)
    assert cmd.stdin is not None and b"Alice" in cmd.stdin and "Alice" not in " ".join(cmd.argv)
    assert lock.parse_holder(holder.json()) == holder
    assert lock.parse_status(holder.json() + "\nconnection=gone\n") == (holder, False)
    assert lock.parse_status(holder.json() + "\nconnection=alive\n") == (holder, True)
    assert lock.parse_status("") == (None, None)
    assert "Alice (alice@laptop) on laptop since 2026-11-26T10:02:00Z (deploy v1.4.2" in holder.describe()
