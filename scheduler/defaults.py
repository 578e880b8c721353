"""Every default and platform limit in one place, each with its reason or source."""

from __future__ import annotations

import os
from datetime import timedelta

# Daemon ------------------------------------------------------------------------------
# The tick is re-armed to the next due time but never sleeps longer than this, so a post
# added from the CLI (by another process) is noticed within a second or two.
POLL_SECONDS = 2.0
# How long a claimed post belongs to its daemon. Longer than any one attempt (request
# timeout + media uploads), short enough that a crash is noticed in minutes.
LEASE_SECONDS = 120.0
# Every HTTP request to a platform carries this timeout (no SDK default suits a daemon).
REQUEST_TIMEOUT_SECONDS = 10.0
# The daemon writes its heartbeat row this often, from a thread of its own; housekeeping
# (expired leases reaped, unknown outcomes looked up) runs as often, in another.
HEARTBEAT_SECONDS = 5.0
HOUSEKEEPING_SECONDS = 5.0
# A post whose outcome is unknown is looked up on the platform this long after, not at
# once: a platform may show a post in its listings a moment after accepting it.
RECONCILE_AFTER_SECONDS = 5.0
# Posts looked up per round (one transaction takes them); the housekeeping thread goes on
# round after round while full rounds come back.
RECONCILE_BATCH = 20
# `tminus status` calls a daemon dead when its heartbeat is older than this: three beats
# missed. A daemon that stops cleanly marks itself stopped at once.
HEARTBEAT_STALE_SECONDS = 3 * HEARTBEAT_SECONDS
# The daemon's clock is the database's (scheduler.clock.AnchoredClock), read again every
# minute; a host clock further than this from it is reported in the log and `status`.
CLOCK_ANCHOR_SECONDS = 60.0
CLOCK_SKEW_WARN_SECONDS = 2.0
# Posts claimed by one transaction; a tick claims batch after batch until none is due.
CLAIM_BATCH = 100
# The daemon claims the posts falling due within this long before their instant (at most
# CLAIM_BATCH held so), so that at the instant only the request is left: a claim takes
# 5-100 ms on a busy machine. Such a post is "sending" for that last moment: a cancel
# then comes too late, a pause still holds it (read again right before the request).
CLAIM_AHEAD_SECONDS = 0.5
# The daemon's interpreter switch interval: a thread woken at a post's instant waits at
# most about this long for the GIL (Python's default is 5 ms).
SWITCH_SECONDS = 0.0005
# ...except while more than BUSY_LANES accounts' lanes send side by side (a burst): then
# it is BUSY_SWITCH_SECONDS (Python's default). Hundreds of threads handing the GIL on
# every 0.5 ms spend the CPU on the hand-offs: a burst of 1,000 posts at 250 ms took
# 9.0 s of the daemon's CPU at 0.5 ms and 5.0 s at 5 ms (all out 9.8 s / 6.4 s, same
# minute); a post due meanwhile waits at most 5 ms more, behind a busy CPU anyway.
BUSY_LANES = 8
BUSY_SWITCH_SECONDS = 0.005
# Publications are recorded in groups of at most this many, at most this long after
# the first of them went out (a crash in between is repaired by reconciliation).
RECORD_BATCH = 50
RECORD_WITHIN_SECONDS = 0.5
# A dry run claims the posts already due this many at a time, and records them so
# (its adapter answers in microseconds: a burst of 10,000 is ten claims and ten
# records, not a hundred and two hundred, each a statement over what is still due
# and a commit). Claiming ahead keeps to CLAIM_BATCH; real platforms to both above.
DRY_RUN_BATCH = 1000
# The most accounts whose posts go out side by side: the ceiling of the daemon's pool of
# sending threads, which starts one thread per account with posts due up to this many.
# A platform request takes a few hundred ms; 1,000 accounts due at one second go out in
# about 4 rounds at 256 (each thread costs ~100 KB resident; mostly waiting on sockets).
CONCURRENCY = 256
# Child processes the daemon makes its platform requests in (`scheduler.sendproc`): the
# SDKs are three quarters of its CPU in a burst. 0: none, the daemon makes them itself.
# One per core the process may run on, for the host: 1,000 posts at 250 ms went out in
# 3.0 s with 2 on 2 cores, 5.3 s with none, in one run; but 4 daemons on 2 cores, each
# with its own 2, took 11 s against 5 s. So with TMINUS_SEND_PROCESS unset a daemon uses
# its share of them (`publishers.send_share`): split evenly among the daemons alive on
# its host (the daemons table: its host name, a beat within HEARTBEAT_STALE_SECONDS),
# what is left over going to the longest running, then read again every
# HEARTBEAT_SECONDS; a daemon whose share is none sends in its own process. None on one
# core, where they would only add their hand-offs; at most 16 (TMINUS_SEND_PROCESS's own
# ceiling). They are forked, primed, from one fork server (`scheduler.prefork`): a
# child starts in milliseconds. Daemons started together agree on their shares before
# any forks: each writes its row first and reads the share every
# SEND_SHARE_AGREE_SECONDS while its fork server imports the SDKs, the last reading
# (the server ready) deciding (`publishers.Publishers._agree`); a tenth of a second
# is a short query ten times a second of a server import that takes seconds.
CORES = len(os.sched_getaffinity(0))
SEND_PROCESSES = min(CORES, 16) if CORES > 1 else 0
SEND_SHARE_AGREE_SECONDS = 0.1
# Warm-up: accounts with posts due within WARM_AHEAD_SECONDS get their adapters built and,
# on Bluesky, a login (createSession: a round trip, rate limited) made or refreshed before
# the due second, not at it; looked for every WARM_EVERY_SECONDS, each account readied
# again at most every WARM_AGAIN_SECONDS, on up to WARM_THREADS threads at once (a login
# waits on the network). 10 minutes ahead: a Bluesky access token lives 2 hours.
WARM_AHEAD_SECONDS = 600.0
WARM_EVERY_SECONDS = 1.0
WARM_AGAIN_SECONDS = 60.0
WARM_THREADS = 64
# A daemon sending a claimed batch reads the pauses in force again at most this often,
# so a pause begun mid-batch stops the rest of it within about a second.
PAUSE_CHECK_SECONDS = 0.5

# How long a platform's own protection against a repeated create lasts: a retry of a post
# whose outcome was unknown longer ago than this looks the post up on the platform first.
# Mastodon remembers an Idempotency-Key for about an hour (PLATFORMS.md); 50 minutes
# leaves room for clock differences. X and Bluesky are not listed: X refuses a duplicate
# text, Bluesky a record key it already holds, however late.
REPEAT_PROTECTION: dict[str, timedelta] = {"mastodon": timedelta(minutes=50)}

# Retry -------------------------------------------------------------------------------
# Transient failures back off exponentially: 30 s, 60 s, 120 s, ... capped at 15 min,
# and give up after this many attempts (a post is time-bound anyway: not_after).
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 900.0
MAX_ATTEMPTS = 8

# Posts -------------------------------------------------------------------------------
# The default expiry of a post (2 h) is `content.campaign.DEFAULT_EXPIRES`: campaign files
# need it, and `content` imports nothing from here.

# Rate budgets per platform and tier live in the platform registry
# (content/platforms.py), each with its source.

# Web dashboard -------------------------------------------------------------------------
# A login lasts a week: the last days of a campaign are no time to be logged out, and
# logging out (or removing the person) ends a session at once anyway.
WEB_SESSION_SECONDS = 7 * 86400
# Failed logins counted within this window: at most this many per name (a guessed
# password) and per client address (one machine trying many names), then refused
# until the window has passed.
LOGIN_WINDOW_SECONDS = 900
LOGIN_MAX_PER_NAME = 5
LOGIN_MAX_PER_ADDRESS = 20
# The overview flags drafts due within this long that nobody approved yet.
DUE_SOON_SECONDS = 6 * 3600
# Most posts one approval may take: the page shows every one of them, and a person
# cannot read more at once.
APPROVE_AT_ONCE = 500
# Most cards the timeline shows at once; filters narrow it.
TIMELINE_CARDS = 500

# Alerts (scheduler.alerts) -------------------------------------------------------------
# At most one message per kind of alert and campaign this often: a burst of 200 failures
# is one message listing them, not 200. Five minutes is soon enough for a person to act
# on a failure and rare enough not to be muted.
NOTIFY_EVERY_SECONDS = 300.0
# The alert thread collects, groups and delivers this often.
ALERT_SECONDS = 10.0
# A delivery that fails is tried again after 30 s, 60 s, ... at most 15 min apart, and
# given up after this many attempts (about four hours: a dead webhook is itself shown
# in `tminus notify status`).
ALERT_BACKOFF_SECONDS = 30.0
ALERT_BACKOFF_CAP_SECONDS = 900.0
ALERT_MAX_ATTEMPTS = 20
# One delivery waits at most this long for all of TMINUS_NOTIFY (Apprise's own deadline).
ALERT_TIMEOUT_SECONDS = 30.0
# Items a message lists; the rest are counted ("and 180 more").
ALERT_LISTED = 20
# Events read per round by the collector (a campaign of 100,000 approved is many rounds).
ALERT_SCAN = 20_000
# The first collection (TMINUS_NOTIFY just set) says what happened within this long
# before it: a daemon's first failures are not missed, a campaign's history not replayed.
ALERT_LOOK_BACK_SECONDS = 3600.0
# "No daemon alive while posts are due" once a queued post is this late: a daemon
# restarting (a few seconds) is not an alert.
NO_DAEMON_GRACE_SECONDS = 60.0

# The campaign report ------------------------------------------------------------------
# A post that went out within this long of its time is "on time".
ON_TIME_SECONDS = 60.0
# Posts whose counts one fetch reads per account, least recently read first: Mastodon
# has no batch read (one GET per status) and its 300 requests / 5 min are shared with
# posting; 100 leaves two thirds of that for the posts. Bluesky reads 25 a request, X 100.
ENGAGEMENT_PER_ACCOUNT = 100
# Counts read less than this long ago are not read again: a report refreshed twice in a
# row costs no requests the second time.
ENGAGEMENT_FRESH_SECONDS = 60.0

# Storage -----------------------------------------------------------------------------
DATABASE_URL = "sqlite:///tminus.db"
DRYRUN_OUTBOX = "outbox.jsonl"
SQLITE_BUSY_TIMEOUT_MS = 30_000
