"""Every bound on what a campaign folder may ask of tminus, each with its reason.

A campaign file and its templates are input: written by a person in a hurry, copied
from somewhere, or made by someone hostile. Whatever they hold, `validate`, `plan` and
`preview` must end within seconds with a clear line, never hang or fill the memory.
Each bound below is far above what a real countdown campaign needs, and each one hit
is a `CampaignError` naming the file, the key or line, and the bound.

Rendering is bounded by a count of operations, not by a clock: every call, operator,
attribute look-up, loop step and printed value of a template costs one, so the same
template is refused on a fast machine and a slow one alike and tests need no timing.
Each single operation is kept cheap by the size bounds (no string, list or number in a
template can grow past them). `RENDER_SECONDS` is only a backstop behind all that.
"""

from __future__ import annotations

from datetime import timedelta

# -- files ---------------------------------------------------------------------------

# The largest campaign in the benchmarks is a few kilobytes; a megabyte of TOML is a
# mistake (a data dump, a binary) and reading it would only delay the error.
MAX_CAMPAIGN_FILE_BYTES = 1_000_000

# A post is at most a few thousand characters; a template 20 times that is not a post.
MAX_TEMPLATE_BYTES = 100_000

# POSIX NAME_MAX is 255 bytes per path component; whole names are kept short so every
# message that quotes one still fits a line.
MAX_PATH_COMPONENT = 255
MAX_PATH_CHARS = 1024

# TOML arrays and inline tables nested deeper than this are not a campaign (the file
# format needs 3 or 4 levels); Python's tomllib recurses per level and would overflow.
MAX_TOML_NESTING = 20

# -- templates (checked on the template's tokens, before Jinja parses it) -------------

# {% if %} / {% for %} / {% macro %} ... nested deeper than this. Jinja compiles each to
# a Python block, and Python refuses more than 20 nested blocks in one function.
MAX_BLOCK_NESTING = 10
# ( [ { nested deeper than this inside one tag; Jinja's parser recurses per level.
MAX_BRACKET_NESTING = 20
# Tokens inside one {{ ... }} or {% ... %}: a long chain (1+1+1+..., - - - -x) becomes
# an equally deep tree that Jinja and Python's compiler walk recursively.
MAX_TAG_TOKENS = 100
# {% include %} / {% import %} / {% extends %} chains: a template including itself or
# a cycle of templates is refused outright; a straight chain longer than this too.
MAX_INCLUDE_DEPTH = 8

# -- rendering one post ---------------------------------------------------------------

# Operations per rendered post (see the module docstring). A countdown template uses a
# few dozen; a loop of 1,000 steps doing ten things each still fits.
MAX_RENDER_OPERATIONS = 100_000
# Macro (and recursive loop) calls nested deeper than this: a macro calling itself.
MAX_CALL_DEPTH = 30
# Any one string a template builds, and the rendered post. Platforms take 280 to a
# few thousand characters; this leaves room for the length check to say by how much.
MAX_TEXT_CHARS = 20_000
# All the text one render produces along the way: printed values, macro results,
# joined strings, loop bodies written out (a post keeps at most MAX_TEXT_CHARS of it).
MAX_RENDER_CHARS = 1_000_000
# Items in any one list or range a template builds.
MAX_ITEMS = 10_000
# Integers in template arithmetic: 2**64 counts every second of the universe; larger
# ones (10**100000000) take minutes to compute and print.
MAX_INT_BITS = 64
# A width or precision in a %-format or str.format spec ("%0999999999d").
MAX_FORMAT_WIDTH = 100
# Backstop only: a post whose rendering takes longer than this on the wall clock.
RENDER_SECONDS = 5.0

# -- expansion ------------------------------------------------------------------------

# A range expansion larger than this is almost surely a typo (cron every minute for a
# month); the planner refuses it rather than filling the queue.
MAX_FIRES_PER_SCHEDULE = 10_000
# Posts in one campaign (every fire time x account x thread part). The benchmark plans
# 100,000; twice that is still a few hundred megabytes at most while planning.
MAX_POSTS_PER_CAMPAIGN = 200_000
# Durations and offsets from the deadline ("T-4d", expires, budgets, queue add +10m):
# ten years is longer than any campaign, and keeps every date far from year 1 and 9999.
MAX_DURATION = timedelta(days=3650)
# Digits in one number of a duration: "999999999999d" is refused before Python makes
# an integer of it.
MAX_DURATION_DIGITS = 7
# Deadlines between these years: rehearsing a campaign of 2017 works; year 1 or 9999
# would put T-4d or expiry outside what a date can hold.
MIN_YEAR = 1971
MAX_YEAR = 9000
