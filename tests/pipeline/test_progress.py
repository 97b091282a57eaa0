import io
import json
import threading

import pyarrow as pa
import pytest

from asif.pipeline.progress import (
    ProgressSnapshot,
    ProgressTracker,
    ShardPoller,
    TerminalProgress,
    caller_sinks,
    shown_to,
)


class Recorder:
    """A sink that keeps what it was shown."""

    def __init__(self) -> None:
        self.shown: list[ProgressSnapshot] = []
        self.said: list[str] = []
        self.closed = False
        self.event = threading.Event()

    def show(self, snapshot: ProgressSnapshot) -> None:
        self.shown.append(snapshot)
        self.event.set()

    def say(self, message: str) -> None:
        self.said.append(message)

    def close(self) -> None:
        self.closed = True


def test_snapshot_rate_eta_percent_and_line():
    s = ProgressSnapshot("embed", 10.0, done=50, total=150, downloaded=150, embedded=48,
                         decode_failed=2, committed=32, download_failed=7)  # fmt: skip
    assert (s.rate, s.eta, s.failed, s.percent) == (5.0, 20.0, 9, pytest.approx(50 + 50 / 3))
    assert s.line() == (
        "embed 50/150 | downloaded 150 | embedded 48 | committed 32 | failed 9 | "
        "5.0 pairs/s | ETA 0:00:20"
    )
    unknown = ProgressSnapshot("download", 3.0, done=0)
    assert (unknown.rate, unknown.eta, unknown.percent) == (None, None, 0.0)
    assert unknown.line().startswith("download 0 | ") and "- pairs/s | ETA -" in unknown.line()


def test_tracker_reports_every_interval_while_entered():
    sink, clock = Recorder(), iter(range(1000)).__next__
    with ProgressTracker([sink], interval=0.01, clock=lambda: float(clock())) as tracker:
        polls = []
        tracker.phase("download", poll=lambda: polls.append(1) or tracker.set(done=len(polls)))
        for _ in range(3):
            sink.event.clear()
            assert sink.event.wait(5)  # the heartbeat reports with no update from the build
        tracker.phase("embed", total=10)
        tracker.add(done=4, embedded=4)
        tracker.say("committed batch 1")
    assert sink.closed and sink.said == ["committed batch 1"]
    downloads = [s for s in sink.shown if s.phase == "download"]
    assert len(downloads) >= 4 and downloads[-1].done == len(polls) > 3
    assert tracker.snapshot().embedded == 4 and tracker.snapshot().done == 4


def test_shown_to_adds_sinks_inside_the_block_only():
    outer, inner = Recorder(), Recorder()
    assert caller_sinks() == ()
    with shown_to(outer):
        with shown_to(inner):
            assert caller_sinks() == (outer, inner)
        assert caller_sinks() == (outer,)
    assert caller_sinks() == ()


def test_shard_poller_counts_this_run_s_shards_and_the_inputs_left(tmp_path):
    def stats(shard: int, count: int, ok: int) -> None:
        body = {"count": count, "successes": ok}
        (tmp_path / f"{shard:05d}_stats.json").write_text(json.dumps(body))

    def inputs(shard: int, rows: int) -> None:
        (tmp_path / "_tmp").mkdir(exist_ok=True)
        with pa.ipc.new_file(str(tmp_path / "_tmp" / f"{shard}.feather"), schema) as w:
            w.write_table(pa.table({"url": ["u"] * rows}))

    schema = pa.schema([("url", pa.string())])
    stats(0, 10, 9)  # an old shard: not this run's
    tracker = ProgressTracker()
    poll = ShardPoller(tmp_path, tracker)
    poll()
    assert (tracker.snapshot().done, tracker.snapshot().total) == (0, None)
    inputs(1, 10), inputs(2, 4)
    poll()
    assert (tracker.snapshot().done, tracker.snapshot().total) == (0, 14)
    stats(1, 10, 6)
    (tmp_path / "_tmp" / "1.feather").unlink()
    (tmp_path / "00002_stats.json").write_text('{"count": 4, "succ')  # being written
    poll()
    s = tracker.snapshot()
    assert (s.done, s.total, s.downloaded, s.download_failed) == (10, 14, 6, 4)


def test_terminal_progress_lines_or_bars():
    plain = io.StringIO()
    sink = TerminalProgress(plain, bars=False)
    sink.show(ProgressSnapshot("download", 2.0, done=4, total=8))
    sink.say("downloaded 4 pairs")
    assert plain.getvalue().splitlines() == [
        ProgressSnapshot("download", 2.0, done=4, total=8).line(),
        "downloaded 4 pairs",
    ]
    tty = io.StringIO()
    bars = TerminalProgress(tty, bars=True)
    bars.show(ProgressSnapshot("embed", 2.0, done=4, total=8))
    bars.show(ProgressSnapshot("embed", 4.0, done=6, total=8))
    bars.close()
    assert " 75%|" in tty.getvalue() and "1.5 pairs/s | ETA 0:00:01" in tty.getvalue()
