"""A streaming XML parser that refuses DTDs and entities (expat, without building a tree).

Element-tree parsing (even `iterparse` with each element cleared) builds an object per element; an OSM
extract has hundreds of thousands. Expat's callbacks hand over the tag and the attributes only, which
is several times faster. What defusedxml refuses is refused here too: any document type declaration
(and so every entity declaration: the "billion laughs" bomb, external entities), external entity
references and parameter entities.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from xml.parsers import expat

StartHandler = Callable[[str, dict[str, str]], None]
EndHandler = Callable[[str], None]

CHUNK_BYTES = 1 << 20


class UnsafeXmlError(ValueError):
    """The document declares a DTD or entities; `kind` is what was found (defusedxml's names)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)


class MalformedXmlError(ValueError):
    """Expat's well-formedness error, with the line it was found on."""

    def __init__(self, message: str, line: int | None) -> None:
        self.line = line
        super().__init__(message)


def _refuse(kind: str) -> Callable[..., None]:
    def handler(*_args: object) -> None:
        raise UnsafeXmlError(kind)
    return handler


def _refuse_external_reference(*_args: object) -> int:
    raise UnsafeXmlError("ExternalReferenceForbidden")


def safe_parser() -> expat.XMLParserType:
    """An expat parser with the refusals above installed and no element handlers yet."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse("DTDForbidden")
    parser.EntityDeclHandler = _refuse("EntitiesForbidden")
    parser.UnparsedEntityDeclHandler = _refuse("EntitiesForbidden")
    parser.ExternalEntityRefHandler = _refuse_external_reference
    return parser


def feed_file(parser: expat.XMLParserType, path: Path, after_chunk: Callable[[], None] | None = None) -> None:
    """Parse the file with `parser` (from safe_parser) in CHUNK_BYTES pieces, calling `after_chunk()`
    after each piece but the final, empty one (a reader can convert what it gathered, keeping memory
    bounded).

    Raises UnsafeXmlError, MalformedXmlError, or whatever a handler or `after_chunk` raises."""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                parser.Parse(chunk, False)
                if after_chunk is not None:
                    after_chunk()
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise MalformedXmlError(str(exc), getattr(exc, "lineno", None)) from None


def stream_xml(path: Path, start: StartHandler, end: EndHandler) -> None:
    """Call `start(tag, attributes)` and `end(tag)` for every element of the file, in document order.

    Raises UnsafeXmlError (DTD, entity declaration, external entity), MalformedXmlError, or whatever a
    handler raises (it stops the parse)."""
    parser = safe_parser()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    feed_file(parser, path)
