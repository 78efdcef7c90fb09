# SPDX-License-Identifier: MIT
"""AWS's XML, written the way EC2 writes it: pretty-printed with four spaces, empty
elements self-closed. A document is built from nodes: (name, value), where the value
is a string, number, bool, None or a list of nodes."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape as xml_escape

Node = tuple[str, Any]  # (name, str | int | bool | None | list[Node])


def xml_bool(v: bool) -> str:
        return "true" if v else "false"


def lines(name: str, value: Any, depth: int, out: list[str]) -> None:
        pad = "    " * depth
        if value is None or value == "" or (isinstance(value, list) and not value):
                out.append(f"{pad}<{name}/>")
        elif isinstance(value, list):
                out.append(f"{pad}<{name}>")
                for child, child_value in value:
                        lines(child, child_value, depth + 1, out)
                out.append(f"{pad}</{name}>")
        else:
                text = xml_bool(value) if isinstance(value, bool) else str(value)
                out.append(f"{pad}<{name}>{xml_escape(text)}</{name}>")


def response(action: str, namespace: str, request_id: str, nodes: list[Node]) -> bytes:
        """<ActionResponse xmlns=...> with the request id first, then the nodes."""
        out = ['<?xml version="1.0" encoding="UTF-8"?>',
               f'<{action}Response xmlns="{namespace}">',
               f"    <requestId>{request_id}</requestId>"]
        for name, value in nodes:
                lines(name, value, 1, out)
        out.append(f"</{action}Response>")
        return ("\n".join(out) + "\n").encode()


def error(code: str, message: str, request_id: str) -> bytes:
        """The error document: <Response><Errors><Error> with Code and Message."""
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Response><Errors><Error><Code>{xml_escape(code)}</Code>"
                f"<Message>{xml_escape(message)}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>").encode()


def query_response(action: str, namespace: str, request_id: str, nodes: list[Node]) -> bytes:
        """The answer of the other Query services (STS, Auto Scaling, CloudWatch): <ActionResponse>
        with <ActionResult> holding the nodes, then ResponseMetadata/RequestId."""
        out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<{action}Response xmlns="{namespace}">']
        lines(f"{action}Result", nodes, 1, out)
        lines("ResponseMetadata", [("RequestId", request_id)], 1, out)
        out.append(f"</{action}Response>")
        return ("\n".join(out) + "\n").encode()


def query_error(code: str, message: str, request_id: str, namespace: str, sender: bool = True) -> bytes:
        """Their error document: ErrorResponse/Error with Type (Sender, Receiver for a 5xx), Code
        and Message, then RequestId."""
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<ErrorResponse xmlns="{namespace}">\n'
                f"  <Error>\n    <Type>{'Sender' if sender else 'Receiver'}</Type>\n"
                f"    <Code>{xml_escape(code)}</Code>\n    <Message>{xml_escape(message)}</Message>\n  </Error>\n"
                f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n").encode()
