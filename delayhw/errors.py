"""The one exception type users see."""


class DelayhwError(ValueError):
    """Bad user input: names the file, the field and the rule that was broken."""
