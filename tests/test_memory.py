"""The daemon's malloc arenas: glibc's per-thread arenas are capped, unless the environment says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from monitor.memory import _glibc, limit_malloc_arenas

# A child process: optionally caps arenas, lets eight threads allocate and stay alive together, and prints
# how many arenas glibc made (malloc_info's <heap nr=...> elements).
CHILD = textwrap.dedent(
    """
    import ctypes, os, sys, tempfile, threading
    from monitor.memory import limit_malloc_arenas
    print(limit_malloc_arenas() if sys.argv[1] == "cap" else None)

    allocated, counted = threading.Barrier(9), threading.Barrier(9)

    def allocate():
        kept = [bytes(2000 + n) for n in range(200)]  # above pymalloc's limit: from malloc
        allocated.wait()
        counted.wait()

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    allocated.wait()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        print(open(out.name).read().count("<heap nr="))
    counted.wait()
    """
)


def arenas(mode: str, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=environ, check=True
    ).stdout.split()
    return out[0], int(out[1])


def needs_glibc() -> None:
    """The daemon's memory settings are glibc's; on another C library these tests cannot say anything."""
    assert _glibc(), "the C library is not glibc (os.confstr CS_GNU_LIBC_VERSION): these are glibc's"


def test_the_daemon_caps_glibc_arenas() -> None:
    needs_glibc()
    said, capped = arenas("cap")
    assert said == "True"
    assert capped <= 2
    _, default = arenas("leave")
    assert default > capped  # a thread of its own, an arena of its own: what the cap is for


def test_malloc_arena_max_in_the_environment_wins() -> None:
    needs_glibc()
    said, count = arenas("cap", MALLOC_ARENA_MAX="4")
    assert said == "False"
    assert count == 4


def test_nothing_is_capped_off_glibc_or_twice_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert not limit_malloc_arenas()
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setattr("monitor.memory._glibc", lambda: False)
    assert not limit_malloc_arenas()


def test_free_heap_pages_go_back_to_the_system_at_most_once_a_while() -> None:
    needs_glibc()
    from monitor.memory import return_free_memory

    kept = [bytes(3000) for _ in range(20_000)]  # 60 MB from malloc
    del kept[2_000:18_000]  # 48 MB freed in the middle of the heap: whole pages to give back
    assert return_free_memory(every=0)
    assert not return_free_memory(every=3600)  # just done
    del kept
