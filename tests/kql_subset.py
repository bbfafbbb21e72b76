"""A tokenizer and parser for the subset of KQL the alert queries in ``infra/alerts/`` use, so a
test can tell which events and dimensions a query reads (and that it is a query at all).

The subset: ``//`` comments; ``let NAME = <tabular or scalar>;`` statements; one tabular
expression at the end; a tabular expression is a source (a table, a tabular ``let`` name,
``union a, b``, or a parenthesised tabular expression) followed by ``| operator args`` stages
(``where extend project summarize join order sort top take limit distinct count union``).
Expressions: identifiers, ``a.b`` and ``a["b"]`` access, string literals (``"..."``,
``'...'``, ``@"..."``), numbers and timespans (``15m``, ``2d``), calls, ``dynamic([...])``,
comparison, arithmetic and word operators (``and or in !in has contains startswith``).
Brackets must balance, strings must end, each stage must have the shape its operator wants,
and operands and operators must alternate, so a garbled query is an error, not a pass.

What the check needs is kept per pipeline: its table, the event names it selects
(``name == "X"`` and ``name in ("X", ...)`` on ``customEvents``) and the ``customDimensions``
keys it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

TABLES: Final = frozenset({"customEvents", "customMetrics", "requests", "exceptions", "traces",
                           "dependencies"})
STAGES: Final = frozenset({"where", "extend", "project", "summarize", "join", "order", "sort",
                           "top", "take", "limit", "distinct", "count", "union"})
WORD_OPERATORS: Final = frozenset({"and", "or", "in", "!in", "has", "!has", "contains",
                                   "!contains", "startswith", "endswith", "between"})
JOIN_KINDS: Final = frozenset({"inner", "innerunique", "leftouter", "rightouter", "fullouter",
                               "leftanti", "rightanti", "leftsemi", "rightsemi"})
TIMESPAN_UNITS: Final = frozenset({"d", "h", "m", "s", "ms", "min", "sec", "microsecond",
                                   "tick"})
SYMBOL_OPERATORS: Final = ("==", "!=", "=~", "!~", "<=", ">=", "<", ">", "=", "+", "-", "*",
                           "/", "%")
PUNCTUATION: Final = frozenset("()[]{},.;|")
CLOSING: Final = {")": "(", "]": "[", "}": "{"}


class KqlError(ValueError):
    """The text is not a query of the subset; the message names the line and column."""


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``ident``, ``string`` (text unquoted), ``number``, ``op`` or ``punct``."""

    kind: str
    text: str
    line: int
    column: int

    def where(self) -> str:
        """``line:column`` of the token, for messages."""
        return f"{self.line}:{self.column}"


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, comments and white space left out.

    Raises:
        KqlError: an unterminated string, a bad number or timespan, a character the subset
            has no use for, or unbalanced brackets.
    """
    tokens: list[Token] = []
    position, line, line_start = 0, 1, 0
    length = len(text)

    def error(message: str, at: int) -> KqlError:
        return KqlError(f"{line}:{at - line_start + 1}: {message}")

    while position < length:
        char = text[position]
        column = position - line_start + 1
        if char == "\n":
            position, line, line_start = position + 1, line + 1, position + 1
        elif char in " \t\r":
            position += 1
        elif text.startswith("//", position):
            end = text.find("\n", position)
            position = length if end < 0 else end
        elif char in "\"'" or (char == "@" and text[position + 1:position + 2] in {'"', "'"}):
            verbatim = char == "@"
            quote = text[position + 1] if verbatim else char
            cursor = position + (2 if verbatim else 1)
            value = []
            while True:
                if cursor >= length or text[cursor] == "\n":
                    raise error("the string is not terminated", position)
                if text[cursor] == quote:
                    break
                if text[cursor] == "\\" and not verbatim:
                    if cursor + 1 >= length:
                        raise error("the string is not terminated", position)
                    value.append(text[cursor + 1])
                    cursor += 2
                    continue
                value.append(text[cursor])
                cursor += 1
            tokens.append(Token("string", "".join(value), line, column))
            position = cursor + 1
        elif char.isdigit():
            cursor = position
            while cursor < length and (text[cursor].isdigit() or text[cursor] == "."):
                cursor += 1
            number = text[position:cursor]
            if number.count(".") > 1 or number.endswith("."):
                raise error(f"{number!r} is not a number", position)
            unit_start = cursor
            while cursor < length and text[cursor].isalpha():
                cursor += 1
            unit = text[unit_start:cursor]
            if unit and unit not in TIMESPAN_UNITS:
                raise error(f"{number + unit!r} is not a number or a timespan", position)
            tokens.append(Token("number", text[position:cursor], line, column))
            position = cursor
        elif char.isalpha() or char == "_":
            cursor = position
            while cursor < length and (text[cursor].isalnum() or text[cursor] == "_"):
                cursor += 1
            tokens.append(Token("ident", text[position:cursor], line, column))
            position = cursor
        elif char == "!" and text[position + 1:position + 2].isalpha():
            cursor = position + 1
            while cursor < length and text[cursor].isalpha():
                cursor += 1
            word = text[position:cursor]
            if word not in WORD_OPERATORS:
                raise error(f"{word!r} is not an operator of the subset", position)
            tokens.append(Token("op", word, line, column))
            position = cursor
        elif char in PUNCTUATION:
            tokens.append(Token("punct", char, line, column))
            position += 1
        else:
            symbol = next((each for each in SYMBOL_OPERATORS if text.startswith(each, position)),
                          None)
            if symbol is None:
                raise error(f"{char!r} has no place in a query", position)
            tokens.append(Token("op", symbol, line, column))
            position += len(symbol)
    _check_brackets(tokens)
    return tokens


def _check_brackets(tokens: list[Token]) -> None:
    stack: list[Token] = []
    for token in tokens:
        if token.kind != "punct":
            continue
        if token.text in "([{":
            stack.append(token)
        elif token.text in CLOSING:
            if not stack or stack[-1].text != CLOSING[token.text]:
                raise KqlError(f"{token.where()}: {token.text!r} closes nothing")
            stack.pop()
    if stack:
        raise KqlError(f"{stack[-1].where()}: {stack[-1].text!r} is never closed")


@dataclass
class Pipeline:
    """One tabular expression: where its rows come from and what it reads of them."""

    table: str
    """The table at its source (for a ``let`` name or a union: the first one's)."""
    events: set[str] = field(default_factory=set)
    """Event names it selects, its source's included."""
    event_tokens: list[Token] = field(default_factory=list)
    dimension_tokens: list[Token] = field(default_factory=list)
    inherited_events: set[str] = field(default_factory=set)


@dataclass
class Query:
    """A parsed query: every pipeline in it (``let`` bodies, join sides, the result)."""

    pipelines: list[Pipeline]
    lets: dict[str, str]
    """Each ``let`` name and what it holds: ``tabular`` or ``scalar``."""


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.pipelines: list[Pipeline] = []
        self.tabular: dict[str, Pipeline] = {}
        self.scalars: set[str] = set()

    # --- token access -------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token | None:
        at = self.position + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            last = self.tokens[-1] if self.tokens else Token("punct", "", 1, 1)
            raise KqlError(f"{last.where()}: the query ends too early")
        self.position += 1
        return token

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.take()
        if token.kind != kind or (text is not None and token.text != text):
            wanted = text if text is not None else kind
            raise KqlError(f"{token.where()}: expected {wanted!r}, got {token.text!r}")
        return token

    def at(self, kind: str, text: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == kind and token.text == text

    # --- statements ---------------------------------------------------------------------------

    def query(self) -> Query:
        if not self.tokens:
            raise KqlError("1:1: the query is empty")
        result: Pipeline | None = None
        while (token := self.peek()) is not None:
            if result is not None:
                raise KqlError(f"{token.where()}: {token.text!r} after the query's result")
            if token.kind == "ident" and token.text == "let":
                self.let()
                self.expect("punct", ";")
            else:
                result = self.pipeline(frozenset({";"}))
                if self.at("punct", ";"):
                    self.take()
        if result is None:
            raise KqlError(f"{self.tokens[-1].where()}: the query has no result, only lets")
        lets = dict.fromkeys(self.tabular, "tabular") | dict.fromkeys(self.scalars, "scalar")
        return Query(self.pipelines, lets)

    def let(self) -> None:
        self.expect("ident", "let")
        name = self.expect("ident")
        if name.text in self.tabular or name.text in self.scalars or name.text in TABLES:
            raise KqlError(f"{name.where()}: {name.text!r} is already defined")
        self.expect("op", "=")
        if self.starts_tabular():
            self.tabular[name.text] = self.pipeline(frozenset({";"}))
        else:
            body = self.until(frozenset({";"}))
            self.expression(body, Pipeline("scalar"))
            self.scalars.add(name.text)

    def starts_tabular(self) -> bool:
        token = self.peek()
        if token is None:
            return False
        if token.kind == "ident":
            return token.text in TABLES or token.text in self.tabular or token.text == "union"
        if token.kind == "punct" and token.text == "(":
            return self.group_has_pipe(self.position)
        return False

    def group_has_pipe(self, start: int) -> bool:
        depth = 0
        for token in self.tokens[start:]:
            if token.kind == "punct" and token.text in "([{":
                depth += 1
            elif token.kind == "punct" and token.text in ")]}":
                depth -= 1
                if depth == 0:
                    return False
            elif depth == 1 and token.kind == "punct" and token.text == "|":
                return True
        return False

    def until(self, stops: frozenset[str]) -> list[Token]:
        """The tokens up to a stop (``|``, ``;`` or an unopened ``)``) at this depth."""
        taken: list[Token] = []
        depth = 0
        while (token := self.peek()) is not None:
            if token.kind == "punct":
                if depth == 0 and (token.text in stops or token.text == ")"):
                    break
                if token.text in "([{":
                    depth += 1
                elif token.text in ")]}":
                    depth -= 1
            taken.append(self.take())
        return taken

    # --- tabular expressions ------------------------------------------------------------------

    def pipeline(self, stops: frozenset[str]) -> Pipeline:
        pipeline = self.source()
        self.pipelines.append(pipeline)
        while self.at("punct", "|"):
            bar = self.take()
            operator = self.peek()
            if operator is None or operator.kind != "ident" or operator.text not in STAGES:
                got = "nothing" if operator is None else repr(operator.text)
                raise KqlError(f"{bar.where()}: a stage must start with an operator "
                               f"({', '.join(sorted(STAGES))}), got {got}")
            self.take()
            self.stage(operator, pipeline, stops)
        pipeline.events |= pipeline.inherited_events
        return pipeline

    def source(self) -> Pipeline:
        token = self.take()
        if token.kind == "punct" and token.text == "(":
            inner = self.pipeline(frozenset())
            self.expect("punct", ")")
            return Pipeline(inner.table, inherited_events=set(inner.events))
        if token.kind != "ident":
            raise KqlError(f"{token.where()}: a query starts with a table, got {token.text!r}")
        if token.text == "union":
            sources = self.tabular_list(self.until(frozenset({"|", ";"})), token)
            return Pipeline(sources[0].table,
                            inherited_events=set().union(*(each.events for each in sources)))
        if token.text in TABLES:
            return Pipeline(token.text)
        if token.text in self.tabular:
            bound = self.tabular[token.text]
            return Pipeline(bound.table, inherited_events=set(bound.events))
        raise KqlError(f"{token.where()}: {token.text!r} is neither a table nor a tabular let")

    def tabular_list(self, tokens: list[Token], at: Token) -> list[Pipeline]:
        items = _split(tokens, ",", at)
        sources = []
        for item in items:
            if len(item) != 1 or item[0].kind != "ident" or item[0].text not in self.tabular:
                raise KqlError(f"{item[0].where()}: union takes tabular let names, "
                               f"got {' '.join(t.text for t in item)!r}")
            sources.append(self.tabular[item[0].text])
        return sources

    def stage(self, operator: Token, pipeline: Pipeline, stops: frozenset[str]) -> None:
        name = operator.text
        if name == "join":
            self.join(operator, pipeline, stops)
            return
        args = self.until(stops | {"|"})
        if name == "count":
            if args:
                raise KqlError(f"{args[0].where()}: count takes no arguments")
        elif name == "where":
            self.expression(_nonempty(args, operator), pipeline)
        elif name in {"extend", "project", "distinct"}:
            for item in _split(_nonempty(args, operator), ",", operator):
                self.assignment(item, pipeline)
        elif name == "summarize":
            aggregates, by = _split_keyword(_nonempty(args, operator), "by")
            for item in _split(_nonempty(aggregates, operator), ",", operator):
                body = item[2:] if _is_named(item) else item
                if not (len(body) >= 3 and body[0].kind == "ident" and body[1].text == "("):
                    raise KqlError(f"{item[0].where()}: summarize wants aggregations "
                                   f"(count(), max(x), ...)")
                self.assignment(item, pipeline)
            if by is not None:
                for item in _split(_nonempty(by, operator), ",", operator):
                    self.assignment(item, pipeline)
        elif name in {"order", "sort"}:
            if not args or args[0].text != "by":
                raise KqlError(f"{operator.where()}: {name} wants 'by'")
            for item in _split(_nonempty(args[1:], operator), ",", operator):
                self.expression(_without_direction(item), pipeline)
        elif name == "top":
            count, by = _split_keyword(args, "by")
            if len(count) != 1 or count[0].kind != "number" or by is None:
                raise KqlError(f"{operator.where()}: top wants 'top N by column'")
            self.expression(_without_direction(_nonempty(by, operator)), pipeline)
        elif name in {"take", "limit"}:
            if len(args) != 1 or args[0].kind != "number":
                raise KqlError(f"{operator.where()}: {name} wants a number")
        elif name == "union":
            pipeline.inherited_events |= set().union(
                *(each.events for each in self.tabular_list(_nonempty(args, operator), operator)))

    def join(self, operator: Token, pipeline: Pipeline, stops: frozenset[str]) -> None:
        if self.at("ident", "kind"):
            self.take()
            self.expect("op", "=")
            kind = self.expect("ident")
            if kind.text not in JOIN_KINDS:
                raise KqlError(f"{kind.where()}: {kind.text!r} is not a join kind")
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == "(":
            self.take()
            self.pipeline(frozenset())
            self.expect("punct", ")")
        else:
            right = self.expect("ident")
            if right.text not in self.tabular and right.text not in TABLES:
                raise KqlError(f"{right.where()}: join wants a table, got {right.text!r}")
        self.expect("ident", "on")
        columns = self.until(stops | {"|"})
        for item in _split(_nonempty(columns, operator), ",", operator):
            if len(item) != 1 or item[0].kind != "ident":
                raise KqlError(f"{item[0].where()}: join on wants column names")

    # --- expressions --------------------------------------------------------------------------

    def assignment(self, item: list[Token], pipeline: Pipeline) -> None:
        self.expression(item[2:] if _is_named(item) else item, pipeline)

    def expression(self, tokens: list[Token], pipeline: Pipeline) -> None:
        """Operands and operators alternate; brackets hold expressions (or nothing, after a
        call); ``customDimensions`` is read only as ``.key`` or ``["key"]``."""
        if not tokens:
            raise KqlError("an expression is empty")
        expecting_operand = True
        previous: Token | None = None
        for index, token in enumerate(tokens):
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            is_operator = token.kind == "op" or (token.kind == "ident"
                                                 and token.text in WORD_OPERATORS)
            if token.kind == "punct" and token.text in "([":
                opens_call = (token.text == "(" and previous is not None
                              and previous.kind == "ident" and not expecting_operand)
                indexes = token.text == "[" and not expecting_operand
                if not (expecting_operand or opens_call or indexes):
                    raise KqlError(f"{token.where()}: {token.text!r} after an operand")
                closing = ")" if token.text == "(" else "]"
                empty_allowed = opens_call or token.text == "["
                if following is not None and following.text == closing and not empty_allowed:
                    raise KqlError(f"{token.where()}: empty brackets")
                expecting_operand = True
            elif token.kind == "punct" and token.text in ")]":
                if expecting_operand and previous is not None and previous.text not in "([":
                    raise KqlError(f"{token.where()}: {token.text!r} after an operator")
                expecting_operand = False
            elif token.kind == "punct" and token.text == ",":
                if expecting_operand:
                    raise KqlError(f"{token.where()}: ',' where a value belongs")
                expecting_operand = True
            elif token.kind == "punct" and token.text == ".":
                if (previous is None or previous.kind != "ident" or following is None
                        or following.kind != "ident"):
                    raise KqlError(f"{token.where()}: '.' joins two names")
                expecting_operand = True
            elif token.kind == "punct":
                raise KqlError(f"{token.where()}: {token.text!r} has no place here")
            elif is_operator:
                unary = token.text in {"-", "+"} and expecting_operand
                if expecting_operand and not unary:
                    raise KqlError(f"{token.where()}: operator {token.text!r} where a value "
                                   f"belongs")
                expecting_operand = True
            else:
                if not expecting_operand:
                    raise KqlError(f"{token.where()}: {token.text!r} follows a value without "
                                   f"an operator")
                called = following is not None and following.text == "("
                reserved = token.text in {"by", "on", "kind", "let"} or (
                    token.text in STAGES and not called)  # count() is a call, count a stage
                if token.kind == "ident" and reserved:
                    raise KqlError(f"{token.where()}: {token.text!r} has no place here")
                expecting_operand = False
                self.note(tokens, index, pipeline)
            previous = token
        if expecting_operand:
            raise KqlError(f"{tokens[-1].where()}: the expression ends with an operator")

    def note(self, tokens: list[Token], index: int, pipeline: Pipeline) -> None:
        """Record an event-name comparison or a ``customDimensions`` key at ``index``."""
        token = tokens[index]
        after = tokens[index + 1:index + 4]
        before = tokens[index - 1] if index > 0 else None
        if token.kind != "ident" or (before is not None and before.text == "."):
            return
        if token.text == "customDimensions":
            dotted = len(after) >= 2 and after[0].text == "." and after[1].kind == "ident"
            indexed = (len(after) >= 3 and after[0].text == "[" and after[1].kind == "string"
                       and after[2].text == "]")
            if dotted or indexed:
                pipeline.dimension_tokens.append(after[1])
            else:
                raise KqlError(f"{token.where()}: read customDimensions as .key or "
                               f"[\"key\"], so the key can be checked")
        elif token.text == "name" and pipeline.table == "customEvents":
            self.note_names(tokens, index, pipeline)

    def note_names(self, tokens: list[Token], index: int, pipeline: Pipeline) -> None:
        token = tokens[index]
        operator = tokens[index + 1] if index + 1 < len(tokens) else None
        if operator is None or operator.text not in {"==", "in"}:
            got = "nothing" if operator is None else repr(operator.text)
            raise KqlError(f"{token.where()}: compare an event's name with == or in, so the "
                           f"name can be checked (got {got})")
        if operator.text == "==":
            value = tokens[index + 2] if index + 2 < len(tokens) else None
            if value is None or value.kind != "string":
                raise KqlError(f"{token.where()}: name == wants a string literal")
            values = [value]
        else:
            group = tokens[index + 2:]
            if not group or group[0].text != "(":
                raise KqlError(f"{token.where()}: name in wants a list (\"A\", \"B\")")
            values = []
            for each in group[1:]:
                if each.text == ")":
                    break
                if each.kind == "string":
                    values.append(each)
                elif each.text != ",":
                    raise KqlError(f"{each.where()}: name in lists string literals only")
        pipeline.event_tokens.extend(values)
        pipeline.events.update(each.text for each in values)


def _nonempty(tokens: list[Token], operator: Token) -> list[Token]:
    if not tokens:
        raise KqlError(f"{operator.where()}: {operator.text} has nothing to work on")
    return tokens


def _split(tokens: list[Token], separator: str, at: Token) -> list[list[Token]]:
    """The tokens split at ``separator`` outside brackets; no item may be empty."""
    items: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "punct" and token.text in "([{":
            depth += 1
        elif token.kind == "punct" and token.text in ")]}":
            depth -= 1
        if depth == 0 and token.kind == "punct" and token.text == separator:
            items.append([])
        else:
            items[-1].append(token)
    for item in items:
        if not item:
            raise KqlError(f"{at.where()}: an empty item in {at.text}'s list")
    return items


def _split_keyword(tokens: list[Token], keyword: str) -> tuple[list[Token], list[Token] | None]:
    depth = 0
    for index, token in enumerate(tokens):
        if token.kind == "punct" and token.text in "([{":
            depth += 1
        elif token.kind == "punct" and token.text in ")]}":
            depth -= 1
        elif depth == 0 and token.kind == "ident" and token.text == keyword:
            return tokens[:index], tokens[index + 1:]
    return tokens, None


def _is_named(item: list[Token]) -> bool:
    return len(item) >= 3 and item[0].kind == "ident" and item[1].text == "="


def _without_direction(item: list[Token]) -> list[Token]:
    return item[:-1] if item and item[-1].text in {"asc", "desc"} else item


def parse(text: str) -> Query:
    """The query in ``text``, parsed.

    Raises:
        KqlError: it is not a query of the subset (the message says where and why).
    """
    return _Parser(tokenize(text)).query()


def problems(query: Query, events: frozenset[str],
             dimensions: Mapping[str, frozenset[str]]) -> list[str]:
    """What ``query`` reads that the code does not define: an event name no event has, a
    ``customDimensions`` key not among the dimensions of every event its pipeline selects, or a
    key read where no event is selected (on ``customEvents``) or on another table."""
    found = []
    for pipeline in query.pipelines:
        for token in pipeline.event_tokens:
            if token.text not in events:
                found.append(f"{token.where()}: no event is named {token.text!r}")
        selected = pipeline.events & events
        for token in pipeline.dimension_tokens:
            if pipeline.table != "customEvents":
                found.append(f"{token.where()}: customDimensions.{token.text} on "
                             f"{pipeline.table} is no event's dimension")
            elif not selected:
                found.append(f"{token.where()}: customDimensions.{token.text} is read without "
                             f"selecting an event by name")
            else:
                lacking = sorted(name for name in selected if token.text not in dimensions[name])
                if lacking:
                    found.append(f"{token.where()}: {', '.join(lacking)} has no dimension "
                                 f"{token.text!r}")
    return found
