"""The MongoDB commands a client starts, as sent: for tests that count or size what reaches the database."""

from pymongo import monitoring


class StartedCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[dict] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(event.command)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def named(self, name: str, collection: str | None = None) -> list[dict]:
        """The commands called `name` ("find", "insert", ...), those on `collection` only when given."""
        return [command for command in self.commands
                if name in command and (collection is None or command[name] == collection)]
