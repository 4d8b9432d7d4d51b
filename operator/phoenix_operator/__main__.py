"""`python -m phoenix_operator` is the `phoenix` command; child processes start it this way."""

from phoenix_operator.cli import app

app.main()
