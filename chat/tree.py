"""A conversation is a tree of messages; what the user sees is one path through it.

Editing a user message adds a sibling user message; regenerating a reply adds a sibling reply. Among
siblings (messages with one parent) one is ``selected``, so switching back to an earlier version restores
everything below it as it was. The visible conversation starts at the selected root and follows the
selected child down to a leaf.

A Tree is built from ``(id, parent_id, selected, public_id)`` rows of one conversation, loaded in one query.
It reads and writes through the messages queryset it is given, so this module imports no model (chat.models
uses it to place a message saved without a parent).
"""

ROW_FIELDS = ("id", "parent_id", "selected", "public_id")
ONLY = {"index": 1, "count": 1, "previous": None, "next": None}  # a message with no other versions


class Tree:
    def __init__(self, rows, messages=None):
        """``messages``: the conversation's messages queryset, needed only by ``select``."""
        self.messages = messages
        self.children = {}
        self.parent = {}
        self.public_ids = {}
        for pk, parent_id, selected, public_id in sorted(rows, key=lambda row: row[0]):
            self.children.setdefault(parent_id, []).append((pk, selected))
            self.parent[pk] = parent_id
            self.public_ids[pk] = str(public_id)

    @classmethod
    def of(cls, messages):
        """The tree of one conversation's ``messages`` (a queryset, e.g. ``conversation.messages``)."""
        return cls(messages.values_list(*ROW_FIELDS), messages)

    def path(self):
        """Message ids of the visible conversation, in order."""
        path, node = [], None
        while node in self.children:
            node = self._chosen(self.children[node])
            path.append(node)
        return path

    def path_to(self, pk):
        """Message ids from the first message down to ``pk`` (included); empty for None."""
        path = []
        while pk is not None:
            path.append(pk)
            pk = self.parent[pk]
        return path[::-1]

    def leaf(self):
        path = self.path()
        return path[-1] if path else None

    def siblings(self, pk):
        """``pk`` and the other versions of it, oldest first."""
        return [child for child, _ in self.children[self.parent[pk]]]

    def branch(self, pk):
        """Where a message sits among its versions, for the switcher: 1-based ``index``, neighbours' ids."""
        siblings = self.siblings(pk)
        at = siblings.index(pk)
        return {
            "index": at + 1,
            "count": len(siblings),
            "previous": self.public_ids[siblings[at - 1]] if at > 0 else None,
            "next": self.public_ids[siblings[at + 1]] if at + 1 < len(siblings) else None,
        }

    def select(self, pk):
        """Make ``pk`` and each of its ancestors the shown version at its level (a few UPDATEs, only where the
        shown version changes). The tree itself is not updated: build a new one to read the result."""
        node = pk
        while node is not None:
            siblings = self.children[self.parent[node]]
            if self._chosen(siblings) != node or sum(selected for _, selected in siblings) != 1:
                others = [child for child, _ in siblings if child != node]
                self.messages.filter(pk__in=others, selected=True).update(selected=False)
                self.messages.filter(pk=node, selected=False).update(selected=True)
            node = self.parent[node]

    @staticmethod
    def _chosen(children):
        # The newest selected child; with none selected (never written by the app) the newest.
        return next((pk for pk, selected in reversed(children) if selected), children[-1][0])
