"""Built-in tools the model may call, safe to run on a shared server.

The list is sent with every request and is part of the prompt Heroku caches, so ``definitions()`` is built
once from constants, in a fixed order: its JSON is byte-identical between requests (no timestamps, nothing
per user). ``run`` never raises for bad input: every failure is a ``ToolResult`` with ``is_error=True`` and a
message the model can read and act on.
"""

import ast
import json
import math
import operator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from channels.db import database_sync_to_async

from chat import search

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100
# Past this a float would overflow anyway; ints are held to it too so no answer runs to thousands of digits.
MAX_RESULT = 1e300
SEARCH_LIMIT = 5


@dataclass(frozen=True)
class ToolResult:
    content: str
    is_error: bool = False


class ToolError(Exception):
    """A failure whose message is meant for the model."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    function: object  # async (arguments: dict, user) -> str

    def definition(self):
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


# --- calculator ------------------------------------------------------------------------------------------------

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def calculate(expression):
    """The value of an arithmetic expression (numbers, + - * / // % ** and parentheses) as text.

    Parsed with ``ast`` and evaluated node by node from a whitelist: no names, calls, attributes or
    anything else Python could run. Raises ToolError for anything outside it or too large to compute.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("expression must be a non-empty string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolError("expression is not valid arithmetic") from None
    try:
        value = _evaluate(tree.body)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    return _format(value)


def _evaluate(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or abs(left) > MAX_MAGNITUDE):
            raise ToolError(f"exponents are limited to ±{MAX_EXPONENT}")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex):
            raise ToolError("the result is not a real number")
        if abs(result) > MAX_RESULT:
            raise ToolError("the result is too large")
        return result
    raise ToolError(f"unsupported element in expression: {type(node).__name__}")


def _format(value):
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ToolError("the result is not a finite number")
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return str(value)


async def _calculator(arguments, user):
    return calculate(arguments.get("expression"))


# --- current_time ----------------------------------------------------------------------------------------------


def current_time(timezone_name, now=None):
    """The current date and time in an IANA time zone, ISO 8601 plus the zone's abbreviation."""
    if not isinstance(timezone_name, str) or not timezone_name.strip():
        raise ToolError("timezone must be an IANA time zone name such as Europe/Paris")
    try:
        zone = ZoneInfo(timezone_name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown time zone {timezone_name!r}; use an IANA name such as Europe/Paris") from None
    moment = (now or datetime.now(tz=ZoneInfo("UTC"))).astimezone(zone)
    return f"{moment.isoformat(timespec='seconds')} ({moment.tzname()}, {moment:%A})"


async def _current_time(arguments, user):
    return current_time(arguments.get("timezone", "UTC"))


# --- search_conversations --------------------------------------------------------------------------------------


def search_text(user, query):
    """The user's best matching past messages as short lines for the model: title, link, snippet."""
    if not isinstance(query, str) or not query.strip():
        raise ToolError("query must be a non-empty string")
    hits = search.search(user, query, limit=SEARCH_LIMIT)
    if not hits:
        return f"No conversations match {query!r}."
    return "\n".join(f"- {hit.conversation_title} ({hit.url}): {hit.text}" for hit in hits)


async def _search_conversations(arguments, user):
    return await database_sync_to_async(search_text)(user, arguments.get("query"))


TOOLS = (
    Tool(
        "calculator",
        "Evaluate an arithmetic expression exactly. Supports numbers, + - * / // % ** and parentheses.",
        {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "Arithmetic only, no names or functions",
                                          "examples": ["(2 + 3) * 4 ** 2"]}},
            "required": ["expression"],
            "additionalProperties": False,
        },
        _calculator,
    ),
    Tool(
        "current_time",
        "The current date and time in a time zone.",
        {
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "An IANA time zone name",
                                        "examples": ["Europe/Paris"]}},
            "required": ["timezone"],
            "additionalProperties": False,
        },
        _current_time,
    ),
    Tool(
        "search_conversations",
        "Search the user's own earlier conversations; returns titles, links and snippets of matching messages.",
        {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "Words to look for", "examples": ["recipe"]}},
            "required": ["query"],
            "additionalProperties": False,
        },
        _search_conversations,
    ),
)
_BY_NAME = {tool.name: tool for tool in TOOLS}
_DEFINITIONS = json.dumps([tool.definition() for tool in TOOLS])


def definitions():
    """The tool list in the OpenAI function-tool shape; a fresh copy, identical on every call."""
    return json.loads(_DEFINITIONS)


async def run(name, arguments_json, *, user):
    """Run one tool call for ``user``. Never raises for bad input: errors come back as ``is_error``."""
    tool = _BY_NAME.get(name)
    if tool is None:
        return ToolResult(f"Unknown tool {name!r}. Available: {', '.join(_BY_NAME)}.", is_error=True)
    try:
        arguments = json.loads(arguments_json or "{}")
    except (TypeError, ValueError):
        return ToolResult("The arguments are not valid JSON.", is_error=True)
    if not isinstance(arguments, dict):
        return ToolResult("The arguments must be a JSON object.", is_error=True)
    try:
        return ToolResult(await tool.function(arguments, user))
    except ToolError as exc:
        return ToolResult(f"{name} failed: {exc}", is_error=True)
    except Exception:  # a bug in a tool must not end the turn; the model gets a generic message
        return ToolResult(f"{name} failed unexpectedly.", is_error=True)
