from hypothesis import given, settings
from hypothesis import strategies as st

from tagship.builders import history, lock
from tagship.builders.history import Record
from tagship.runtime.compose import retention


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


# ---- rotation: bounded, and what rollback and prune read is still there -------------------------------

_ENTRY = st.tuples(
    st.sampled_from([f"v{n}" for n in range(12)]), st.sampled_from(["deploy", "rollback"]), st.booleans()
)


def _history(entries: list[tuple[str, str, bool]]) -> list[Record]:
    """Records with padding, so that a few dozen of them pass a small limit."""
    return [
        Record(v, f"reg/app:{v}", kind, "succeeded" if ok else "failed", "2026-11-26T07:00:00Z", env={"TAG": v})
        for v, kind, ok in entries
    ]


@given(entries=st.lists(_ENTRY, min_size=1, max_size=150), keep=st.integers(1, 6))
@settings(max_examples=150, deadline=None)
def test_a_rotated_history_answers_rollback_and_prune_as_the_whole_one_did(
    entries: list[tuple[str, str, bool]], keep: int
) -> None:
    records = _history(entries)
    text = "".join(r.line() for r in records)
    limit = 3000  # about 20 lines of these
    kept_text = history.rotated(text, keep, limit)
    kept = history.parse(kept_text)
    current = history.last_succeeded(records)
    assert history.last_succeeded(kept) == current
    assert retention.recorded_tag_key(kept) == retention.recorded_tag_key(records)
    assert history.prune_choice(kept, current, "", keep) == history.prune_choice(records, current, "", keep)
    assert history.previous(kept, current) == history.previous(records, current)
    for version in history.prune_choice(records, current, "", keep):  # each release a rollback can reach
        assert history.find(kept, version) == history.find(records, version)
    # bounded: the newest lines up to half the limit, and two lines at most for each reachable release
    assert len(kept_text.encode()) <= limit // 2 + 2 * (keep + 3) * max(len(r.line()) for r in records)
    assert text.endswith(kept_text.splitlines(keepends=True)[-1])  # the newest line, as written
    assert [line for line in kept_text.splitlines() if line in text.splitlines()] == kept_text.splitlines()


def test_a_rotated_history_drops_old_lines_it_cannot_read_and_keeps_recent_ones_as_they_are() -> None:
    old = "{broken\n" + "".join(rec(f"v{n}").line() for n in range(40))
    recent = "not json, but recent\n" + rec("v41").line()
    kept = history.rotated(old + recent, keep=2, limit=2 * len(recent.encode()))
    assert kept.endswith(recent) and "{broken" not in kept
    assert [r.version for r in history.parse(kept)] == ["v38", "v39", "v41"]  # keep + 1 deployed, v41 current


def test_the_size_an_append_printed_says_whether_to_rotate() -> None:
    assert history.needs_rotation(f"{history.ROTATE_AT + 1}\n")
    assert not history.needs_rotation(f"{history.ROTATE_AT}\n")
    assert not history.needs_rotation("")  # an older server's script printed nothing: never rotate on a guess
