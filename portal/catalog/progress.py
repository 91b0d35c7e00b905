"""Progress bars for long command-line jobs, shown only on a terminal (never in logs or pipes)."""
from __future__ import annotations


class ProgressBars:
    """One tqdm bar per phase; `update(phase, done)` is the loader's progress callback."""

    def __init__(self, stream, enabled: bool | None = None):
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.bars = {}

    def update(self, phase: str, done: int) -> None:
        if not self.enabled:
            return
        if phase not in self.bars:
            from tqdm import tqdm

            self.bars[phase] = tqdm(desc=phase, unit=" " + phase.split()[-1], file=self.stream, leave=True)
        self.bars[phase].update(done)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for bar in self.bars.values():
            bar.close()
