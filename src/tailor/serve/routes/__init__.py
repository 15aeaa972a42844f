"""One router per resource; each is thin: parse, call the library, shape the answer."""
