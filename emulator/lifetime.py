"""How a launcher ends with the test process that started it: `--exit-with-stdin`
ends it once its standard input closes, which happens when the test process
exits, however it ends, so no emulator outlives its tests."""

import os
import sys
import threading


def end_with_stdin(stop=lambda: os._exit(0)):
    """Call `stop` (by default, exit at once) when standard input closes."""

    def watch():
        while sys.stdin.buffer.read(4096):
            pass
        stop()

    threading.Thread(target=watch, daemon=True).start()
