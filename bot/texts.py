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
