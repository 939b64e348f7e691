"""A conversation is a tree of messages; what the user sees is one path through it.

Editing a user message adds a sibling user message; regenerating a reply adds a sibling reply. Among
siblings (messages with one parent) exactly one is ``selected``, so switching back to an earlier version
restores everything below it as it was. The visible conversation starts at the selected root and follows
the selected child down to a leaf.

Everything here works on ``(id, parent_id, selected)`` tuples of one conversation, loaded in one query.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """Where a message sits among its siblings, for the branch switcher (1-based ``index``)."""

    index: int
    count: int
    previous: int | None
    next: int | None


class Tree:
    def __init__(self, rows):
        self.children = {}
        self.parent = {}
        for pk, parent_id, selected in sorted(rows):
            self.children.setdefault(parent_id, []).append((pk, selected))
            self.parent[pk] = parent_id

    @classmethod
    def of(cls, conversation):
        return cls(conversation.messages.values_list("id", "parent_id", "selected"))

    def path(self):
        """Message ids of the visible conversation, in order."""
        path, node = [], None
        while node in self.children:
            node = self._chosen(self.children[node])
            path.append(node)
        return path

    def leaf(self):
        path = self.path()
        return path[-1] if path else None

    def position(self, pk):
        siblings = [child for child, _ in self.children[self.parent[pk]]]
        at = siblings.index(pk)
        return Position(
            index=at + 1,
            count=len(siblings),
            previous=siblings[at - 1] if at > 0 else None,
            next=siblings[at + 1] if at + 1 < len(siblings) else None,
        )

    def siblings(self, pk):
        return [child for child, _ in self.children[self.parent[pk]] if child != pk]

    @staticmethod
    def _chosen(children):
        # The newest selected child; a tree with none selected (never written by the app) shows the newest.
        return next((pk for pk, selected in reversed(children) if selected), children[-1][0])
