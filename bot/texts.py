"""Every sentence the bot says, in one place, ready for translation.

Placeholders are `str.format` fields; `{p}` is the platform's command prefix
(`/` on Telegram and the console, `!` on Matrix).
"""

from __future__ import annotations

WELCOME = (
    "Hello! I publish the statements of our organisation and send new ones to the chats "
    "that subscribe."
)
WELCOME_NEXT = (
    "Try {p}latest for the newest statements, {p}tags to browse by topic, or {p}subscribe "
    "to get every new statement here. {p}help lists everything."
)
HELP_TITLE = "Commands"
HELP_ADMIN_TITLE = "Admin commands"
HELP_MORE = "Send {p}help <command> for details on one command."

# One line per command: what it does. Usage strings live with the registry.
HELP = {
    "start": "Welcome and how to begin.",
    "help": "List the commands you may use, or explain one.",
    "latest": "The newest statements (N of them, up to 20).",
    "tag": "Statements with a hashtag, newest first.",
    "region": "Statements about a country or region, newest first.",
    "search": "Statements containing all of these words.",
    "show": "One statement in full.",
    "tags": "All hashtags, most used first.",
    "regions": "All regions, most used first.",
    "subscribe": "Get new statements in this chat: all, or one tag or region.",
    "unsubscribe": "Stop new statements in this chat: all, or one tag or region.",
    "subscriptions": "What this chat is subscribed to.",
    "publish": "Publish a statement (text in the same message) after a preview.",
    "announce": "Send an announcement to subscribers (optionally tag:<t> or region:<r>).",
    "confirm": "Confirm a pending publish or announcement.",
    "cancel": "Cancel a pending publish or announcement.",
    "stats": "Numbers about the archive, chats and the outbox.",
    "status": "Delivery progress of the latest broadcasts.",
    "feeds": "Website feeds the bot polls; held entries, release or drop them, poll one now.",
    "addfeed": "Poll an RSS or Atom feed and publish its new entries (hold: wait for release).",
    "delfeed": "Stop polling a feed (its statements stay in the archive).",
}

# --- errors and refusals: one clear line each
UNKNOWN_COMMAND = "I don't know the command {p}{name}. Send {p}help for the list."
UNKNOWN_COMMAND_SUGGEST = "I don't know the command {p}{name}. Did you mean {p}{suggestion}?"
USAGE = "Usage: {p}{usage}"
NOT_ADMIN = "Only the bot's admins may use {p}{name}. Nothing was changed."
NOT_CHAT_ADMIN = (
    "Only admins of this chat (or the bot's admins) may change its subscriptions. "
    "Nothing was changed."
)
TOO_LONG = "That is too long: {length} characters, at most {limit} here."
SLOW_DOWN = (
    "Slow down, please: at most {limit} commands a minute. I will answer again in {seconds} s."
)
NOT_A_NUMBER = "{value!r} is not a number. Usage: {p}{usage}"
OUT_OF_RANGE = "{what} must be between {low} and {high}."
INTERNAL_ERROR = "Something went wrong on my side; the operator has been told. Please try later."

NO_STATEMENTS = "There are no statements yet."
NO_SUCH_STATEMENT = "There is no statement {ref}. {p}latest shows the newest."
UNKNOWN_TAG = "No statement is tagged #{tag}."
UNKNOWN_REGION = "No statement is about {region}."
DID_YOU_MEAN = "Did you mean {options}?"
SEE_ALL_TAGS = "{p}tags lists them all."
SEE_ALL_REGIONS = "{p}regions lists them all."
NO_RESULTS = "No statement contains {words}."
SEARCH_NEEDS_WORDS = "Search for what? Usage: {p}search <words>"
SEARCH_TOO_BROAD = "{prefix}* matches too many words; add a letter or two."
NO_MORE = "That page is empty: there are no more results."

LATEST_TITLE = "Latest statements"
TAG_TITLE = "Statements tagged #{tag}"
REGION_TITLE = "Statements about {region}"
SEARCH_TITLE = "Statements with {words}"
PAGE = "page {page}"
BUTTON_PREVIOUS = "◀ Previous"
BUTTON_NEXT = "Next ▶"
BUTTON_READ = "Read #{id}"
READ_MORE = "Read it all: {p}show {id}"
SOURCE = "Source"
TAGS_TITLE = "Hashtags"
REGIONS_TITLE = "Regions"
NONE_YET = "None yet."
STATEMENT_COUNT = "{name} ({count})"

# --- subscriptions
SUBSCRIBED = "Subscribed: this chat will receive {what}."
SUBSCRIBED_OTHER = "Subscribed: {title} will receive {what}."
ALREADY_SUBSCRIBED = "This chat already receives {what}."
ALREADY_SUBSCRIBED_OTHER = "{title} already receives {what}."
UNSUBSCRIBED = "Unsubscribed: this chat no longer receives {what}."
UNSUBSCRIBED_OTHER = "Unsubscribed: {title} no longer receives {what}."
UNSUBSCRIBED_ALL = "Unsubscribed from everything ({count} subscriptions)."
NOT_SUBSCRIBED = "This chat is not subscribed to {what}. {p}subscriptions shows what it is."
NO_SUBSCRIPTIONS = "This chat has no subscriptions. {p}subscribe to get new statements here."
SUBSCRIPTIONS_TITLE = "This chat receives"
WHAT_ALL = "every new statement"
WHAT_TAG = "new statements tagged #{name}"
WHAT_REGION = "new statements about {name}"
SUBSCRIBE_ALSO_ALL = (
    "(It also receives every statement, so this adds nothing until you {p}unsubscribe all.)"
)

# --- admin
PUBLISH_NEEDS_TEXT = (
    "Send the statement in the same message: {p}publish, then the headline "
    "(REGION - Title), the paragraphs, and a closing line of hashtags."
)
PUBLISH_INVALID = "That is not a statement I can publish: {reason}"
PUBLISH_PREVIEW = "Preview: this is what subscribers will see."
PUBLISH_AUDIENCE = (
    "It will go to {count} chats. Confirm within {minutes} minutes: {p}confirm {code}"
)
PUBLISH_DUPLICATE = "This statement is already published as #{id}; nothing to do."
ANNOUNCE_NEEDS_TEXT = "Usage: {p}announce [tag:<tag> | region:<region>] <text>"
ANNOUNCE_PREVIEW = "Announcement preview:"
CONFIRM_BUTTON = "✅ Publish"
CANCEL_BUTTON = "✖ Cancel"
CONFIRM_UNKNOWN = "There is no pending publication with code {code} (it may have expired)."
CONFIRM_NONE = "Nothing is waiting for your confirmation."
CONFIRMED_STATEMENT = "Published as #{id}; sending it to {count} chats."
CONFIRMED_ANNOUNCEMENT = "Announcement #{id} is on its way to {count} chats."
CANCELLED = "Cancelled; nothing was published."
BROADCAST_DONE = (
    "Broadcast of {kind} #{id} “{title}” finished: {sent} delivered, {failed} failed, "
    "{dropped} dropped."
)
STATS_TITLE = "Statistics"
STATUS_TITLE = "Latest broadcasts"
STATUS_NONE = "Nothing has been broadcast yet."
ANNOUNCEMENT_HEADER = "Announcement"

# --- feeds (website RSS / Atom feeds) and the inbox folder
FEEDS_TITLE = "Feeds"
FEEDS_NONE = "No feed is polled. {p}addfeed <url> adds one."
FEED_LINE = "#{id} {url}"
FEED_DEFAULT_TAG = "tag #{tag}"
FEED_DEFAULT_REGION = "region {region}"
FEED_HOLD = "held for release"
FEED_EVERY = "every {span}"
FEED_ENTRIES = "{entries} statements, {held} held"
FEED_NEVER_FETCHED = "not fetched yet"
FEED_LAST_FETCH = "last fetch {when}: {state}"
FEED_OK = "ok"
FEED_NEXT_POLL = "next poll {when}"
FEED_ERROR = "error ({count} in a row): {error}"
FEED_DISABLED = "Feeds are switched off in the configuration ([feeds] enabled = false)."
FEED_IN = "in {span}"
FEED_NOW = "now"
FEED_AGO = "{span} ago"
SPAN_SECONDS = "{n} s"
SPAN_MINUTES = "{n} min"
SPAN_HOURS = "{n} h"
SPAN_DAYS = "{n} days"
FEED_ADDED = (
    "Feed #{id} added: {title} ({entries} entries now). {history} New entries after that are "
    "{then}."
)
FEED_ADDED_HISTORY = "Its current entries go into the archive without being sent."
FEED_ADDED_NO_HISTORY = "Its current entries are only noted, not archived or sent."
FEED_THEN_SENT = "sent to subscribers"
FEED_THEN_HELD = "archived and held until an admin releases them ({p}feeds held)"
FEED_EXISTS = "That feed is already polled as #{id}."
FEED_BAD_URL = "{url!r} is not a feed address: it must start with http:// or https://."
FEED_BAD_OPTION = (
    "I don't understand {option!r}. Usage: {p}addfeed <url> [tag:<tag>] [region:<region>] "
    "[interval:<minutes>] [hold] [nohistory]"
)
FEED_BAD_TAG = "{tag!r} is not a hashtag: use letters, digits and _ (like USdrones)."
FEED_PROBE_FAILED = "I can't use {url} as a feed: {reason}. Nothing was added."
FEED_UNKNOWN = "There is no feed #{id}. {p}feeds lists them."
FEED_DELETED = "Feed #{id} ({url}) is no longer polled; its statements stay in the archive."
FEED_POLL_SOON = "Feed #{id} will be fetched within a few seconds."
FEEDS_HELD_TITLE = "Held feed entries"
FEEDS_HELD_NONE = "No feed entry is waiting for release."
FEED_HELD_LINE = "#{id} {title} (feed #{feed})"
FEED_HELD_HINT = (
    "{p}feeds release <id> sends one to subscribers, {p}feeds drop <id> never sends it."
)
FEED_RELEASED = "Statement #{id} released; sending it to {count} chats."
FEED_RELEASED_ALL = "{n} held statements released; {count} deliveries queued."
FEED_NOT_HELD = "Statement #{id} is not held."
FEED_DROPPED = "Statement #{id} will not be sent; it stays in the archive."
FEED_DROPPED_ALL = "{n} held statements will not be sent; they stay in the archive."
# Why a fetch failed, shown in /feeds.
FEED_HTTP_STATUS = "HTTP {status} {reason}"
FEED_TIMEOUT = "no complete answer within {seconds:g} s"
FEED_TOO_LARGE = "the feed is larger than {limit} bytes"
FEED_TOO_MANY_REDIRECTS = "more than {limit} redirects"
FEED_CONNECT_FAILED = "cannot connect: {reason}"
FEED_NOT_WELL_FORMED = "not well-formed XML (line {line}: {reason})"
FEED_NOT_WELL_FORMED_AT = "not well-formed XML ({reason})"
FEED_NOT_A_FEED = "not an RSS or Atom feed (a web page?)"
FEED_ENTRY_EMPTY = "entry has neither a title nor text"
FEED_ENTRY_NO_TEXT = "entry has a title but no text"

# --- Atom feeds of the archive (HTTP)
ATOM_TAG_TITLE = "#{tag}"
ATOM_REGION_TITLE = "{region}"
ATOM_UNKNOWN_TAG = "No statement has this tag."
ATOM_UNKNOWN_REGION = "No statement is about this region."
ATOM_NOT_READY = "The archive is not open yet."

# --- Telegram
TG_NOT_A_COMMAND = "I answer commands: {p}help lists them, {p}latest shows the newest statements."
TG_STALE_BUTTON = "This button no longer works (the message is too old). Send the command again."
TG_CHAT_NOT_FOUND = (
    "I can't find {ref}. Use the channel's public @username or its numeric id (-100…); "
    "for a private channel, add me as an administrator first, then forward me one of its posts."
)
TG_NOT_A_CHANNEL = "{ref} is a person, not a channel or group. Nothing was changed."
TG_SENDER_NOT_ADMIN = (
    "Telegram says you are not an administrator of {title}, so you can't change its "
    "subscriptions. Nothing was changed."
)
TG_BOT_CANNOT_POST = (
    "I am not allowed to post in {title}. Add @{bot} as an administrator of the channel with "
    "the 'Post messages' right (channel settings → Administrators → Add Admin), then try again."
)
TG_BOT_NOT_IN_GROUP = "I am not a member of {title}. Add @{bot} to the group, then try again."
TG_CHECK_FAILED = "I couldn't check {ref} with Telegram just now. Please try again in a minute."
TG_INLINE_OPEN = "Open in the bot"
TG_INLINE_TRUNCATED = "…"

# --- console
CONSOLE_BANNER = (
    "statement-bot terminal chat: no Telegram token or Matrix account is configured, so "
    "you are chatting with the bot here, as its admin. Type /help, Ctrl-D to quit."
)
CONSOLE_PROMPT = "you> "
