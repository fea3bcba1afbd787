"""Run an asyncio server in a background thread, so notebook cells stay free.

Introduced in notebook 02. Each server gets its own event loop in a daemon thread; the notebook
(or a test) talks to it through `call()`, which schedules work on that loop with
`asyncio.run_coroutine_threadsafe` and waits for the result. No nest_asyncio, no reliance on the
kernel's own loop. Stopping is idempotent and joins the thread, so no thread or socket is left.

    srv = serve(OptionsServer(port=0))     # binds 127.0.0.1, port 0 picks a free port
    print(srv.address)                     # ('127.0.0.1', 53211)
    srv.stop()

    with serve(server) as srv: ...          # the same, stopped at the end of the block
"""
from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, Awaitable, Callable, Protocol


class AsyncServer(Protocol):
    """What `serve` runs: something that starts and stops on an asyncio loop."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class BackgroundServer:
    """A server running on its own loop in a daemon thread."""

    def __init__(self, server: AsyncServer, *, name: str | None = None, start_timeout: float = 10.0):
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=name or f"labkit-{type(server).__name__}", daemon=True
        )
        self._thread.start()
        try:
            self.call(server.start, timeout=start_timeout)
        except BaseException:
            self._shutdown_loop()
            raise

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Cancel whatever the server left behind, then close the loop from its own thread.
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    @property
    def address(self) -> Any:
        """The address the server reports after start (host, port)."""
        return getattr(self.server, "address", None)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopped

    def call(self, fn: Callable[..., Any] | Awaitable[Any], *args: Any, timeout: float | None = 30.0) -> Any:
        """Run `fn(*args)` (a coroutine function, plain function or awaitable) on the server's loop."""
        if not self._thread.is_alive():
            raise RuntimeError("the background server is not running")

        async def invoke() -> Any:
            result = fn(*args) if callable(fn) else fn
            if inspect.isawaitable(result):
                result = await result
            return result

        future = asyncio.run_coroutine_threadsafe(invoke(), self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and its loop; safe to call more than once."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            if self._thread.is_alive():
                self.call(self.server.stop, timeout=timeout)
        finally:
            self._shutdown_loop(timeout)

    def _shutdown_loop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> "BackgroundServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<BackgroundServer {type(self.server).__name__} {self.address} {state}>"


def serve(server: AsyncServer, **kwargs: Any) -> BackgroundServer:
    """Start `server` in a background thread and return a handle once it is listening."""
    return BackgroundServer(server, **kwargs)
