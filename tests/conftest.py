"""Test-session setup shared by every test file."""

import signal

# A shell that starts a command in the background without job control (`cmd &` in a script, nohup) makes it
# ignore SIGINT, and an ignored signal stays ignored across exec: the charctl processes the tests start would
# then never see the Ctrl-C the tests send them. A handler of our own is reset to the default on exec instead.
signal.signal(signal.SIGINT, signal.default_int_handler)
