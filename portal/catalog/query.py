"""The catalog's OpenSearch/Lucene-style query language, translated to Django `Q` objects.

    label:"Scene 42" AND creationDate:[2024-01-01 TO *] AND NOT tags:cloudy
    dataset:URN\\:AIP\\:... OR dataset:"Optical scenes"     instrument:OLI* (cloudCover:[0 TO 20])

Parsing is done by luqum (thread-safe entry point); this module walks its tree and builds a
`Q` over `DataObject` (or `Dataset`, see `parse_dataset_query`). Anything that cannot become
a `Q` raises `QuerySyntaxError` with a 0-based character position, never something else,
so callers can answer 400/422 instead of 500 (property-tested with hypothesis).

Semantics (documented in docs/catalog.md):
- `field:value` on text fields is a case-insensitive exact match; `*` and `?` are wildcards
  (whole-value patterns); quoted phrases are literal. A bare term searches the label
  (case-insensitive substring) and also matches an exact `ipId`.
- Implicit operators follow Lucene's default (OR): `a b` is `a OR b`, `+a` is required,
  `-a` / `NOT a` exclude; explicit `AND` / `OR` / `NOT` / parentheses as usual (AND binds
  tighter than OR).
- Ranges `[a TO b]` (inclusive), `{a TO b}` (exclusive), `*` for an open end, and `>=`,
  `<`... shorthands. `creationDate` values are ISO-8601 (UTC when no offset is given); a
  bare date means the whole day.
- Fields: `label`, `ipId`, `dataset` (its URN or its label), `creationDate`, `tags`, and any
  property, as `properties.<name>` or just `<name>`. A bare name must be a property some
  object of the project has; otherwise it is an unknown field.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from typing import Callable

from django.db.models import Q
from django.db.models import lookups as text_lookups
from django.db.models.fields.json import KeyTextTransform
from luqum.exceptions import ParseError
from luqum.thread import parse as luqum_parse
from luqum.tree import (
    AndOperation, Boost, FieldGroup, From, Group, Item, Not, OrOperation, Phrase, Plus,
    Prohibit, Range, SearchField, To, UnknownOperation, Word,
)

from portal.regex import MAX_USER_PATTERN_LENGTH

MAX_QUERY_LENGTH = 4000
MAX_DEPTH = 40
MAX_CLAUSES = 200
MAX_WILDCARDS = 10
TAG_SEPARATOR = "|"
# No "__": the name goes into a Django lookup path.
PROPERTY_NAME_RE = re.compile(r"^(?!.*__)[A-Za-z_][A-Za-z0-9_\-]{0,99}$")
DATE_ONLY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class QuerySyntaxError(ValueError):
    """A query that cannot be run, with the 0-based offset of the problem in the query."""

    def __init__(self, message: str, position: int = 0):
        self.message = message
        self.position = max(0, int(position))
        super().__init__(f"{message} (at position {self.position})")


class UnknownFieldError(QuerySyntaxError):
    def __init__(self, field: str, position: int = 0):
        self.field = field
        super().__init__(f"unknown field '{field}'", position)


def query_error_message(exc: QuerySyntaxError) -> str:
    return f"Invalid query at position {exc.position}: {exc.message}"


def query_error_body(exc: QuerySyntaxError) -> dict:
    """The REGARDS-style error body for a query that does not parse."""
    return {"messages": [query_error_message(exc)]}


# --- values -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    text: str          # unescaped text
    pattern: str | None  # a regex (portable between Python re and PostgreSQL ARE) when wildcarded
    position: int


def _escape_char(char: str) -> str:
    # ASCII punctuation is escaped with a backslash (a literal in both regex dialects); other
    # characters are never metacharacters.
    if char.isascii() and not char.isalnum():
        return "\\" + char
    return char


def _word_value(word: Word, any_char: str = ".") -> Value:
    """Unescapes a term; unescaped `*` / `?` make it a whole-value pattern."""
    raw = word.value
    text, regex, wildcard = [], [], False
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            i += 1
            text.append(raw[i])
            regex.append(_escape_char(raw[i]))
        elif char == "*":
            wildcard = True
            regex.append(any_char + "*")
            text.append(char)
        elif char == "?":
            wildcard = True
            regex.append(any_char)
            text.append(char)
        else:
            text.append(char)
            regex.append(_escape_char(char))
        i += 1
    if wildcard and raw.count("*") + raw.count("?") > MAX_WILDCARDS:
        raise QuerySyntaxError("too many wildcards in one term", _pos(word))
    pattern = "^" + "".join(regex) + "$" if wildcard else None
    if pattern is not None and len(pattern) > MAX_USER_PATTERN_LENGTH:
        raise QuerySyntaxError(f"wildcard term too long (at most {MAX_USER_PATTERN_LENGTH} characters)", _pos(word))
    return Value(text="".join(text), pattern=pattern, position=_pos(word))


def _phrase_value(phrase: Phrase) -> Value:
    raw = phrase.value[1:-1]
    return Value(text=re.sub(r"\\(.)", r"\1", raw, flags=re.S), pattern=None, position=_pos(phrase))


def _value(node: Item, any_char: str = ".") -> Value:
    if isinstance(node, Word):
        return _word_value(node, any_char)
    if isinstance(node, Phrase):
        return _phrase_value(node)
    raise QuerySyntaxError("expected a value", _pos(node))


def _pos(node: Item) -> int:
    return node.pos if isinstance(getattr(node, "pos", None), int) else 0


def _parse_datetime(value: Value, *, end_of_day: bool) -> datetime:
    """ISO-8601 to an aware UTC datetime; a bare date is its first instant (or the next day's)."""
    text = value.text.strip()
    try:
        if DATE_ONLY_RE.match(text):
            day = date.fromisoformat(text)
            if end_of_day:
                day = day + timedelta(days=1)
            return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise QuerySyntaxError(f"'{text[:40]}' is not an ISO-8601 date", value.position)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    try:
        return parsed.astimezone(dt_timezone.utc)
    except (ValueError, OverflowError):
        raise QuerySyntaxError(f"'{text[:40]}' is out of range", value.position)


def _number(text: str) -> float | None:
    if not NUMBER_RE.match(text.strip()):
        return None
    number = float(text)
    # Out-of-range numbers would fail in the database (SQLite integers, JSON infinities).
    return number if math.isfinite(number) and abs(number) < 1e300 else None


# --- fields -------------------------------------------------------------------------------

@dataclass
class Bound:
    value: Value | None  # None: open end
    inclusive: bool


class Field:
    """How one query field becomes conditions."""

    def term(self, value: Value) -> Q:  # pragma: no cover - interface
        raise NotImplementedError

    def any(self) -> Q:
        return Q()

    def range(self, low: Bound, high: Bound, position: int) -> Q:
        raise QuerySyntaxError("this field does not support ranges", position)


class TextField(Field):
    def __init__(self, lookup: str, exact_lookup: str = "iexact"):
        self.lookup = lookup
        self.exact_lookup = exact_lookup

    def term(self, value: Value) -> Q:
        if value.pattern:
            return Q(**{f"{self.lookup}__iregex": value.pattern})
        return Q(**{f"{self.lookup}__{self.exact_lookup}": value.text})

    def range(self, low: Bound, high: Bound, position: int) -> Q:
        q = Q()
        if low.value is not None:
            q &= Q(**{f"{self.lookup}__{'gte' if low.inclusive else 'gt'}": low.value.text})
        if high.value is not None:
            q &= Q(**{f"{self.lookup}__{'lte' if high.inclusive else 'lt'}": high.value.text})
        return q


class EitherField(Field):
    """A field matching any of several (e.g. `dataset`: its URN or its label)."""

    def __init__(self, *fields: Field):
        self.fields = fields

    def term(self, value: Value) -> Q:
        q = Q()
        for field in self.fields:
            q |= field.term(value)
        return q


class DateField(Field):
    def __init__(self, lookup: str):
        self.lookup = lookup

    def term(self, value: Value) -> Q:
        if value.pattern:
            raise QuerySyntaxError("wildcards are not allowed in dates", value.position)
        start = _parse_datetime(value, end_of_day=False)
        if DATE_ONLY_RE.match(value.text.strip()):
            if start.date() == date.max:  # the last day has no next day to end before
                return Q(**{f"{self.lookup}__gte": start})
            return Q(**{f"{self.lookup}__gte": start, f"{self.lookup}__lt": start + timedelta(days=1)})
        return Q(**{self.lookup: start})

    def range(self, low: Bound, high: Bound, position: int) -> Q:
        q = Q()
        for bound, is_low in ((low, True), (high, False)):
            if bound.value is None:
                continue
            if bound.value.pattern:
                raise QuerySyntaxError("wildcards are not allowed in dates", bound.value.position)
            date_only = DATE_ONLY_RE.match(bound.value.text.strip()) is not None
            # A bare date stands for the whole day: [d TO d] is that day, {d TO ...} after it.
            if is_low:
                instant = _parse_datetime(bound.value, end_of_day=date_only and not bound.inclusive)
                op = "gte" if bound.inclusive or date_only else "gt"
            else:
                instant = _parse_datetime(bound.value, end_of_day=date_only and bound.inclusive)
                op = "lt" if date_only or not bound.inclusive else "lte"
            q &= Q(**{f"{self.lookup}__{op}": instant})
        return q


class TagsField(Field):
    """Tags are kept as `|tag1|tag2|` in `tags_index` so matching is portable (no JSON contains)."""

    def term(self, value: Value) -> Q:
        sep = re.escape(TAG_SEPARATOR)
        if value.pattern:
            inner = value.pattern[1:-1].replace(".*", f"[^{sep}]*").replace(".", f"[^{sep}]")
            return Q(tags_index__iregex=f"{sep}{inner}{sep}")
        if TAG_SEPARATOR in value.text:
            return Q(pk__in=[])
        return Q(tags_index__icontains=f"{TAG_SEPARATOR}{value.text}{TAG_SEPARATOR}")

    def any(self) -> Q:
        return ~Q(tags_index="") & ~Q(tags_index=TAG_SEPARATOR * 2)


class PropertyField(Field):
    """One key of the `properties` JSON. Conditions include "has the key" so NOT stays two-valued."""

    TEXT_LOOKUPS = {
        "iexact": text_lookups.IExact, "iregex": text_lookups.IRegex,
        "gte": text_lookups.GreaterThanOrEqual, "gt": text_lookups.GreaterThan,
        "lte": text_lookups.LessThanOrEqual, "lt": text_lookups.LessThan,
    }

    def __init__(self, name: str, json_field: str = "properties"):
        self.name = name
        self.json_field = json_field

    def _has(self) -> Q:
        return Q(**{f"{self.json_field}__has_key": self.name})

    def _text(self, lookup: str, rhs: str) -> Q:
        # Compared as text (->> / JSON_EXTRACT), with Django's plain lookups.
        return Q(self.TEXT_LOOKUPS[lookup](KeyTextTransform(self.name, self.json_field), rhs))

    def _json(self, lookup: str, rhs) -> Q:
        # Compared as JSON values (numbers, booleans) with the JSON key lookups. The name has
        # no "__" (PROPERTY_NAME_RE) and an explicit lookup ends the path, so it is only a key.
        return Q(**{f"{self.json_field}__{self.name}__{lookup}": rhs})

    def term(self, value: Value) -> Q:
        if value.pattern:
            return self._has() & self._text("iregex", value.pattern)
        q = self._text("iexact", value.text)
        number = _number(value.text)
        if number is not None:
            q |= self._json("exact", number)
        if value.text in ("true", "false"):
            q |= self._json("exact", value.text == "true")
        return self._has() & q

    def any(self) -> Q:
        return self._has()

    def range(self, low: Bound, high: Bound, position: int) -> Q:
        values = [b.value for b in (low, high) if b.value is not None]
        numeric = all(_number(v.text) is not None for v in values)
        q = self._has()
        for bound, ops in ((low, ("gte", "gt")), (high, ("lte", "lt"))):
            if bound.value is None:
                continue
            op = ops[0] if bound.inclusive else ops[1]
            if numeric:
                q &= self._json(op, _number(bound.value.text))
            else:
                q &= self._text(op, bound.value.text)
        return q


class BareTerm(Field):
    """A term without a field: searches the label (substring), or names an ipId exactly."""

    def __init__(self, label: str = "label", ip_id: str = "ip_id"):
        self.label = label
        self.ip_id = ip_id

    def term(self, value: Value) -> Q:
        if value.pattern:
            if value.pattern == "^.*$":
                return Q()
            return Q(**{f"{self.label}__iregex": value.pattern})
        return Q(**{f"{self.label}__icontains": value.text}) | Q(**{self.ip_id: value.text})

    def range(self, low: Bound, high: Bound, position: int) -> Q:
        return TextField(self.label).range(low, high, position)


DATA_OBJECT_FIELDS: dict[str, Field] = {
    "label": TextField("label"),
    "ipid": TextField("ip_id", exact_lookup="exact"),
    "dataset": EitherField(TextField("dataset__ip_id", exact_lookup="exact"), TextField("dataset__label")),
    "creationdate": DateField("creation_date"),
    "tags": TagsField(),
}

DATASET_FIELDS: dict[str, Field] = {
    "label": TextField("label"),
    "ipid": TextField("ip_id", exact_lookup="exact"),
    "creationdate": DateField("created_at"),
}


# --- the tree walk ------------------------------------------------------------------------

class _Translator:
    def __init__(self, fields: dict[str, Field], property_exists: Callable[[str], bool]):
        self.fields = fields
        self.property_exists = property_exists
        self.bare = BareTerm()
        self.clauses = 0
        self._checked_properties: dict[str, bool] = {}

    def field(self, name: str, position: int) -> Field:
        builtin = self.fields.get(name.lower())
        if builtin is not None:
            return builtin
        explicit = name.startswith("properties.")
        prop = name[len("properties."):] if explicit else name
        if not PROPERTY_NAME_RE.match(prop):
            raise UnknownFieldError(name, position)
        if not explicit:
            if prop not in self._checked_properties:
                self._checked_properties[prop] = self.property_exists(prop)
            if not self._checked_properties[prop]:
                raise UnknownFieldError(name, position)
        return PropertyField(prop)

    def walk(self, node: Item, field: Field | None, depth: int) -> Q:
        if depth > MAX_DEPTH:
            raise QuerySyntaxError("query is nested too deeply", _pos(node))
        depth += 1
        if isinstance(node, SearchField):
            if field is not None:
                raise QuerySyntaxError("a field cannot be nested in another field", _pos(node))
            return self.walk(node.expr, self.field(node.name, _pos(node)), depth)
        if isinstance(node, (Group, FieldGroup)):
            return self.walk(node.expr, field, depth)
        if isinstance(node, AndOperation):
            q = Q()
            for operand in node.operands:
                q &= self.walk(operand, field, depth)
            return q
        if isinstance(node, OrOperation):
            q = self.walk(node.operands[0], field, depth)
            for operand in node.operands[1:]:
                q |= self.walk(operand, field, depth)
            return q
        if isinstance(node, UnknownOperation):
            return self.implicit(node, field, depth)
        if isinstance(node, (Not, Prohibit)):
            return ~self.walk(node.a, field, depth)
        if isinstance(node, Plus):
            return self.walk(node.a, field, depth)
        if isinstance(node, Boost):
            return self.walk(node.expr, field, depth)  # relevance only: no effect on matching
        if isinstance(node, (Word, Phrase)):
            return self.leaf(node, field)
        if isinstance(node, Range):
            return self.range(field, Bound(self.bound(node.low), node.include_low),
                              Bound(self.bound(node.high), node.include_high), node)
        if isinstance(node, From):
            return self.range(field, Bound(self.bound(node.a), node.include), Bound(None, True), node)
        if isinstance(node, To):
            return self.range(field, Bound(None, True), Bound(self.bound(node.a), node.include), node)
        kind = type(node).__name__.lower()
        raise QuerySyntaxError(f"{kind} queries are not supported", _pos(node))

    def implicit(self, node: UnknownOperation, field: Field | None, depth: int) -> Q:
        """Lucene's clause list: +required, -excluded, and at least one optional when none is required."""
        must, should, must_not = [], [], []
        for operand in node.operands:
            if isinstance(operand, Plus):
                must.append(self.walk(operand.a, field, depth + 1))
            elif isinstance(operand, (Not, Prohibit)):
                must_not.append(self.walk(operand.a, field, depth + 1))
            else:
                should.append(self.walk(operand, field, depth + 1))
        q = Q()
        for clause in must:
            q &= clause
        if should and not must:
            any_of = should[0]
            for clause in should[1:]:
                any_of |= clause
            q &= any_of
        for clause in must_not:
            q &= ~clause
        return q

    def leaf(self, node: Word | Phrase, field: Field | None) -> Q:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise QuerySyntaxError(f"too many terms (at most {MAX_CLAUSES})", _pos(node))
        target = field or self.bare
        if isinstance(node, Word) and node.value == "*":
            return target.any() if field is not None else Q()
        any_char = "."
        return target.term(_value(node, any_char))

    def bound(self, node: Item) -> Value | None:
        if isinstance(node, Word) and node.value == "*":
            return None
        if isinstance(node, Prohibit) and isinstance(node.a, (Word, Phrase)):
            inner = _value(node.a)
            return Value(text="-" + inner.text, pattern=None, position=_pos(node))
        value = _value(node)
        if value.pattern:
            raise QuerySyntaxError("wildcards are not allowed in range bounds", value.position)
        return value

    def range(self, field: Field | None, low: Bound, high: Bound, node: Item) -> Q:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise QuerySyntaxError(f"too many terms (at most {MAX_CLAUSES})", _pos(node))
        return (field or self.bare).range(low, high, _pos(node))


_POSITION_RE = re.compile(r"at position (\d+)")


def _parse_tree(q: str) -> Item:
    if len(q) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(f"query longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH)
    bad = next((i for i, c in enumerate(q) if c == "\x00"), None)
    if bad is not None:
        raise QuerySyntaxError("NUL character in query", bad)
    try:
        return luqum_parse(q)
    except ParseError as exc:
        match = _POSITION_RE.search(str(exc))
        position = int(match.group(1)) if match else len(q)
        reason = str(exc).split(" at ")[0].replace("Syntax error in input : ", "")
        raise QuerySyntaxError(reason.replace("  ", " ").strip() or "syntax error", position) from None
    except Exception as exc:  # noqa: BLE001
        # The parser's own failures on odd input (e.g. decimal errors on `a^.`) must still be
        # a syntax error, never a 500.
        raise QuerySyntaxError(f"cannot parse query ({type(exc).__name__})", 0) from None


def _translate(q: str | None, fields: dict[str, Field], property_exists: Callable[[str], bool]) -> Q:
    if q is None or not q.strip():
        return Q()
    tree = _parse_tree(q)
    try:
        return _Translator(fields, property_exists).walk(tree, None, 0)
    except RecursionError:
        raise QuerySyntaxError("query is nested too deeply", 0) from None


def parse_query(q: str | None, *, project) -> Q:
    """Translates a catalog query into a `Q` over `DataObject` (raises `QuerySyntaxError`).

    `project` scopes the check that a bare field name is a known property; the returned `Q`
    does not filter by project: apply it to a project-filtered queryset.
    """
    from .models import DataObject

    def property_exists(name: str) -> bool:
        return DataObject.unscoped_objects.filter(project=project).filter(properties__has_key=name).exists()

    return _translate(q, DATA_OBJECT_FIELDS, property_exists)


def parse_dataset_query(q: str | None, *, project) -> Q:
    """Like `parse_query` for `Dataset` (fields `label`, `ipId`, `creationDate`, properties)."""
    from .models import Dataset

    def property_exists(name: str) -> bool:
        return Dataset.unscoped_objects.filter(project=project).filter(properties__has_key=name).exists()

    return _translate(q, DATASET_FIELDS, property_exists)


# --- sorting ------------------------------------------------------------------------------

MAX_SORT_KEYS = 5
SORT_DIRECTIONS = ("ASC", "DESC")
DATA_OBJECT_SORT_COLUMNS = {"label": "label", "providerid": "label", "id": "ip_id", "ipid": "ip_id",
                            "creationdate": "creation_date"}
DATASET_SORT_COLUMNS = {"label": "label", "providerid": "label", "id": "ip_id", "ipid": "ip_id",
                        "creationdate": "created_at"}


def parse_sort(specs, *, columns: dict[str, str]) -> list:
    """Spring-style `sort` values (`name[,ASC|DESC]`, or `a,b,DESC`) to `order_by` expressions.

    A name is a built-in field or a property (`name` or `properties.name`, compared as JSON
    values; objects without it come last). Raises `QuerySyntaxError` on anything else.
    """
    from django.db.models import F

    order = []
    for spec in specs:
        parts = [p.strip() for p in str(spec).split(",") if p.strip()]
        direction = "ASC"
        if parts and parts[-1].upper() in SORT_DIRECTIONS:
            direction = parts.pop().upper()
        if not parts:
            raise QuerySyntaxError("sort needs a field name, e.g. sort=label,ASC", 0)
        for name in parts:
            column = columns.get(name.lower())
            if column is None:
                prop = name[len("properties."):] if name.startswith("properties.") else name
                if not PROPERTY_NAME_RE.match(prop):
                    raise UnknownFieldError(name[:100], 0)
                column = f"properties__{prop}"
            expression = F(column)
            order.append(expression.desc(nulls_last=True) if direction == "DESC"
                         else expression.asc(nulls_last=True))
            if len(order) > MAX_SORT_KEYS:
                raise QuerySyntaxError(f"at most {MAX_SORT_KEYS} sort keys", 0)
    return order
