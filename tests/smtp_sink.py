"""A minimal SMTP server on 127.0.0.1 for tests: accepts every message and keeps it."""

from __future__ import annotations

import asyncio


class SMTPSink:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write((line + "\r\n").encode())

        say("220 sink ready")
        data: list[str] | None = None
        while line := await reader.readline():
            text = line.decode(errors="replace").rstrip("\r\n")
            if data is not None:
                if text == ".":
                    self.messages.append("\n".join(data))
                    data = None
                    say("250 queued")
                else:
                    data.append(text)
                continue
            verb = text.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250 sink")
            elif verb == "DATA":
                data = []
                say("354 go ahead")
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                break
            else:
                say("250 ok")
            await writer.drain()
        writer.close()
