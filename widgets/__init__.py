"""The notebook UI of crlhf: line annotation, annotation sessions, the live crowd dashboard and
the threshold explorer. Widgets only show and collect; the method lives in ``crlhf``."""
