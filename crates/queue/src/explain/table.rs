//! The data behind `explain`: every enhanced status (RFC 3463 and the IANA registry), the
//! basic reply codes, the keyword refinements and the connection-level outcomes, each with its
//! summary, detail, side and fix.

/// Where the problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// This server, its IP address, its network or its configuration.
    Ours,
    /// The DNS records of the sender's domain or of this server's IP address.
    OurDns,
    /// The recipient's server or mailbox.
    Recipient,
    /// The DNS records of the recipient's domain.
    TheirDns,
    /// The address written or the message sent.
    Sender,
    Unclear,
    Nobody,
}

impl Side {
    pub(super) fn sentence(self) -> &'static str {
        match self {
            Side::Ours => {
                "Where the problem is: on your side, with this server, its IP address or its \
                 network."
            }
            Side::OurDns => {
                "Where the problem is: in DNS and configuration, in the records your domain or \
                 your server's IP address publish."
            }
            Side::Recipient => {
                "Where the problem is: on the recipient's side, with their mail server or their \
                 mailbox."
            }
            Side::TheirDns => {
                "Where the problem is: in DNS, in the records of the recipient's domain."
            }
            Side::Sender => {
                "Where the problem is: with the sender, in the address they wrote to or the \
                 message they sent."
            }
            Side::Unclear => {
                "Where the problem is: the code alone does not say; the text of the reply \
                 usually does."
            }
            Side::Nobody => "Where the problem is: nowhere, this is not an error.",
        }
    }
}

pub(super) struct Info {
    pub(super) side: Side,
    pub(super) summary: &'static str,
    pub(super) detail: &'static str,
    /// Empty: nothing to do.
    pub(super) fix: &'static str,
}

const fn i(side: Side, summary: &'static str, detail: &'static str, fix: &'static str) -> Info {
    Info {
        side,
        summary,
        detail,
        fix,
    }
}

/// A row of the enhanced status table; `class` is [`ANY`] unless the row is for one class.
pub(super) struct StatusEntry {
    pub(super) class: u8,
    pub(super) subject: u16,
    pub(super) detail: u16,
    /// The registry's name, with the defining document.
    pub(super) title: &'static str,
    /// Generic: keyword refinements may replace it.
    pub(super) refinable: bool,
    pub(super) info: Info,
}

pub(super) const ANY: u8 = 0;
const GENERIC: bool = true;
const PRECISE: bool = false;

const fn st(key: (u8, u16, u16), title: &'static str, refinable: bool, info: Info) -> StatusEntry {
    StatusEntry {
        class: key.0,
        subject: key.1,
        detail: key.2,
        title,
        refinable,
        info,
    }
}

pub(super) struct CodeEntry {
    pub(super) code: u16,
    pub(super) title: &'static str,
    pub(super) refinable: bool,
    pub(super) info: Info,
}

const fn cd(code: u16, title: &'static str, refinable: bool, info: Info) -> CodeEntry {
    CodeEntry {
        code,
        title,
        refinable,
        info,
    }
}

/// Keywords (lower case, words separated by one space, matched at the start of a word) that
/// sharpen a generic row.
pub(super) struct Refinement {
    pub(super) words: &'static [&'static str],
    /// Precise statuses `(subject, detail)` this refinement may still replace.
    pub(super) also: &'static [(u16, u16)],
    /// Only for temporary failures ("try again later").
    pub(super) temporary_only: bool,
    pub(super) info: Info,
}

const fn rf(words: &'static [&'static str], also: &'static [(u16, u16)], info: Info) -> Refinement {
    Refinement {
        words,
        also,
        temporary_only: false,
        info,
    }
}

/// What the queue records when no reply came: the text it writes, the status RFC 3463 gives it.
pub(super) struct Outcome {
    pub(super) words: &'static [&'static str],
    pub(super) status: (u8, u16, u16),
    pub(super) permanent: bool,
    pub(super) info: Info,
}

const fn oc(
    words: &'static [&'static str],
    status: (u8, u16, u16),
    permanent: bool,
    info: Info,
) -> Outcome {
    Outcome {
        words,
        status,
        permanent,
        info,
    }
}

use Side::{Nobody, OurDns, Ours, Recipient, Sender, TheirDns, Unclear};

pub(super) static EMPTY: Info = i(
    Unclear,
    "No reply to explain.",
    "The text given is empty. Pass the reply exactly as the queue or the bounce shows it, for \
     example \"550 5.1.1 User unknown\".",
    "",
);

pub(super) static UNRECOGNISED: Info = i(
    Unclear,
    "Not a reply facteur recognises.",
    "This text has no SMTP reply code (three digits such as 550) and no enhanced status code \
     (such as 5.1.1), and it does not match a known connection problem.",
    "Look for the three-digit code in the full bounce or queue entry and pass that whole line; \
     the words after the code are what the remote server said.",
);

pub(super) static CLASS_4: Info = i(
    Unclear,
    "Temporary failure: the remote server asked to try again later.",
    "The code is not one of the standard ones, but its first digit 4 means a temporary problem: \
     the message may well be accepted on a later attempt.",
    "Usually nothing: the queue retries. If it keeps failing, read the text of the reply for \
     the reason.",
);

pub(super) static CLASS_5: Info = i(
    Unclear,
    "Permanent failure: the remote server refused the message.",
    "The code is not one of the standard ones, but its first digit 5 means a permanent refusal: \
     sending the same message again will fail the same way.",
    "Read the text of the reply for the reason; search it together with the receiving \
     provider's name. If it stays unclear, write to postmaster@ the recipient's domain with the \
     full reply.",
);

/// Every status of RFC 3463 and the IANA "SMTP Enhanced Status Codes" registry, class-neutral
/// (`ANY`) unless a row is for one class.
pub(super) static STATUSES: &[StatusEntry] = &[
    // X.0 Other or undefined status
    st(
        (ANY, 0, 0),
        "Other undefined status (RFC 3463)",
        GENERIC,
        i(
            Unclear,
            "The remote server gave no precise reason.",
            "X.0.0 is the catch-all status: the server refused or deferred without classifying \
             the problem. The words after the code are the only clue.",
            "Read the text of the reply. If it stays unclear and the problem persists, write to \
             postmaster@ the recipient's domain with the full reply.",
        ),
    ),
    // X.1 Addressing status
    st(
        (ANY, 1, 0),
        "Other address status (RFC 3463)",
        GENERIC,
        i(
            Unclear,
            "Something is wrong with the sender's or recipient's address.",
            "The remote server objected to one of the addresses of the message without saying \
             precisely what.",
            "Check both the recipient's address and the sender's address for typos; the text \
             of the reply usually names the one it refused.",
        ),
    ),
    st(
        (ANY, 1, 1),
        "Bad destination mailbox address (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The recipient's address does not exist.",
            "The recipient's server says it has no mailbox by this name: a typo, an account \
             that was closed, or an old address.",
            "Check the address for typos and confirm it with the recipient some other way. \
             Nothing needs changing on this server.",
        ),
    ),
    st(
        (ANY, 1, 2),
        "Bad destination system address (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The recipient's domain does not exist or does not receive mail.",
            "The part of the address after the @ names no mail system: the domain does not \
             exist, or it cannot receive mail.",
            "Check the domain for typos (gmial.com for gmail.com). `dig MX DOMAIN +short` lists \
             the domain's mail servers; an empty answer and no address record means it cannot \
             receive mail.",
        ),
    ),
    st(
        (ANY, 1, 3),
        "Bad destination mailbox address syntax (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The recipient's address is not written correctly.",
            "The recipient's address breaks the rules of how an address is written: a missing \
             or doubled @, a space, or a forbidden character.",
            "Correct the address (one @, no spaces, no quotes or commas) and send again.",
        ),
    ),
    st(
        (ANY, 1, 4),
        "Destination mailbox address ambiguous (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's address matches several mailboxes.",
            "The recipient's server could not tell which of several mailboxes the address \
             means.",
            "Ask the recipient for their full, exact address.",
        ),
    ),
    st(
        (ANY, 1, 5),
        "Destination address valid (RFC 3463)",
        PRECISE,
        i(
            Nobody,
            "The recipient's address is valid.",
            "This status confirms the address; it is used with success replies.",
            "",
        ),
    ),
    st(
        (ANY, 1, 6),
        "Destination mailbox has moved, no forwarding address (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The recipient has moved and left no forwarding address.",
            "The address used to work but its owner has moved elsewhere, and their server does \
             not know where.",
            "Ask the recipient for their new address and update the address book.",
        ),
    ),
    st(
        (ANY, 1, 7),
        "Bad sender's mailbox address syntax (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The sender's address is not written correctly.",
            "The address the message was sent from (the envelope sender, given in the MAIL FROM \
             command) breaks the rules of how an address is written, or the server refuses its \
             form.",
            "Check the sending account's address and the From: address set in the mail \
             program: an address without a domain or with spaces is refused.",
        ),
    ),
    st(
        (ANY, 1, 8),
        "Bad sender's system address (RFC 3463)",
        PRECISE,
        i(
            OurDns,
            "The sender's domain does not exist in public DNS.",
            "Receiving servers check that the domain of the sender's address exists and could \
             receive a reply. This one did not: the domain has no MX or address record they can \
             see.",
            "Give your domain public DNS records: an MX record naming this server and an A (or \
             AAAA) record for that name. Check with `dig MX YOUR-DOMAIN +short`. A domain that \
             exists only on your local network is refused.",
        ),
    ),
    st(
        (ANY, 1, 9),
        "Message relayed to non-compliant mailer (RFC 3886)",
        PRECISE,
        i(
            Nobody,
            "Passed on to a system that sends no delivery reports.",
            "Delivery went on to a mail system that cannot confirm delivery, so no further \
             report will come.",
            "",
        ),
    ),
    st(
        (ANY, 1, 10),
        "Recipient address has null MX (RFC 7505)",
        PRECISE,
        i(
            Sender,
            "The recipient's domain declares that it receives no mail.",
            "The domain publishes a \"null MX\" (an MX record of `0 .`), its way of saying it \
             never accepts mail. No address at this domain can be written to.",
            "Use another address for this recipient.",
        ),
    ),
    // X.2 Mailbox status
    st(
        (ANY, 2, 0),
        "Other or undefined mailbox status (RFC 3463)",
        GENERIC,
        i(
            Recipient,
            "Problem with the recipient's mailbox.",
            "The recipient's mailbox exists but cannot take the message right now, for a reason \
             the status does not detail.",
            "Read the text of the reply. A temporary one usually clears by itself; otherwise \
             tell the recipient some other way.",
        ),
    ),
    st(
        (ANY, 2, 1),
        "Mailbox disabled, not accepting messages (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's mailbox is disabled.",
            "The account exists but takes no mail: it was suspended, closed or frozen by its \
             provider.",
            "Contact the recipient some other way; send again if they reactivate it.",
        ),
    ),
    st(
        (ANY, 2, 2),
        "Mailbox full (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's mailbox is full.",
            "The recipient has used all the space their provider gives them (their quota), so \
             new mail is refused until they delete some.",
            "Nothing to change on your side. Wait and send again later, or tell the recipient \
             some other way that their mailbox is full.",
        ),
    ),
    st(
        (ANY, 2, 3),
        "Message length exceeds administrative limit (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The message is bigger than the recipient's mailbox accepts.",
            "The recipient's provider limits the size of a message, attachments included, and \
             this one is over the limit. Attachments grow by about a third when sent.",
            "Send a smaller message: share big files through a link instead of attaching them.",
        ),
    ),
    st(
        (ANY, 2, 4),
        "Mailing list expansion problem (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient is a mailing list that could not be expanded.",
            "The address is a mailing list, and the list server failed to turn it into the \
             list of its members.",
            "Tell the list's owner (often owner-LISTNAME@ the list's domain).",
        ),
    ),
    // X.3 Mail system status
    st(
        (ANY, 3, 0),
        "Other or undefined mail system status (RFC 3463)",
        GENERIC,
        i(
            Recipient,
            "The recipient's mail system has a problem.",
            "Something is wrong with the receiving mail server itself, not with the address or \
             the message.",
            "Usually nothing: a temporary one clears by itself. If it lasts, write to \
             postmaster@ the recipient's domain.",
        ),
    ),
    st(
        (ANY, 3, 1),
        "Mail system full (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's server is out of storage.",
            "The receiving server has no disk space left for new messages.",
            "Nothing to do on your side: the recipient's provider must free space. The queue \
             retries a temporary refusal.",
        ),
    ),
    st(
        (ANY, 3, 2),
        "System not accepting network messages (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's server is not accepting mail at the moment.",
            "The receiving server is shutting down, in maintenance, or refusing all incoming \
             mail for now.",
            "Nothing to do: the queue retries. If it lasts for days, write to the recipient's \
             provider.",
        ),
    ),
    st(
        (ANY, 3, 3),
        "System not capable of selected features (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's server lacks a feature the message asked for.",
            "The message asked for something the receiving server does not support, such as \
             delivery notifications or non-ASCII (UTF-8) addresses.",
            "Send again without the special option (delivery receipt, non-ASCII address).",
        ),
    ),
    st(
        (ANY, 3, 4),
        "Message too big for system (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The message is bigger than the recipient's server accepts.",
            "The receiving server has a size limit for any message, and this one is over it. \
             Attachments grow by about a third when sent.",
            "Send a smaller message: share big files through a link instead of attaching them.",
        ),
    ),
    st(
        (ANY, 3, 5),
        "System incorrectly configured (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's server reports it is misconfigured.",
            "The receiving server says its own configuration prevents delivery.",
            "Write to postmaster@ the recipient's domain with the full reply.",
        ),
    ),
    st(
        (ANY, 3, 6),
        "Requested priority was changed (RFC 6710)",
        PRECISE,
        i(
            Nobody,
            "The message's priority was changed on the way.",
            "The message asked for a delivery priority and a server lowered or changed it. It \
             is still delivered.",
            "",
        ),
    ),
    // X.4 Network and routing status
    st(
        (ANY, 4, 0),
        "Other or undefined network or routing status (RFC 3463)",
        GENERIC,
        i(
            Unclear,
            "A network or routing problem on the way to the recipient.",
            "Something went wrong between the servers: reaching the recipient's server, or \
             finding it in DNS.",
            "Usually temporary and retried. If it lasts, check this server's network and DNS, \
             then the recipient domain's MX records (`dig MX DOMAIN +short`).",
        ),
    ),
    st(
        (ANY, 4, 1),
        "No answer from host (RFC 3463)",
        PRECISE,
        i(
            Unclear,
            "The recipient's server did not answer.",
            "The connection to the recipient's mail server got no answer: it is down, \
             overloaded or behind a firewall, or outgoing connections to port 25 are blocked \
             on this server's network.",
            "If only this domain fails, wait: the queue retries. If every outside server times \
             out, your provider blocks port 25 (common on home and many cloud connections): \
             ask them to open it, or send through a smarthost (a relay such as your provider's \
             SMTP server or a sending service, on port 587 with a login: `[queue.smarthost]` \
             in the configuration). Test with `nc -zv MX-HOST 25`.",
        ),
    ),
    st(
        (ANY, 4, 2),
        "Bad connection (RFC 3463)",
        PRECISE,
        i(
            Unclear,
            "The connection broke during the exchange.",
            "The connection to the recipient's server opened but was cut before the message \
             was accepted: a network problem, an overloaded server, or a server that drops \
             clients it distrusts.",
            "Usually nothing: the queue retries. If it happens with every server, check this \
             server's network (firewall, MTU).",
        ),
    ),
    st(
        (ANY, 4, 3),
        "Directory server failure (RFC 3463)",
        PRECISE,
        i(
            Unclear,
            "A DNS lookup failed.",
            "Finding where to deliver (the DNS lookup of the domain's mail servers) failed: \
             either this server's DNS resolver is not working, or the recipient domain's DNS \
             servers did not answer.",
            "Check this server resolves names: `dig MX gmail.com +short`. If that works but \
             `dig MX DOMAIN +short` fails, the recipient's DNS is at fault and the queue \
             retries.",
        ),
    ),
    st(
        (ANY, 4, 4),
        "Unable to route (RFC 3463)",
        PRECISE,
        i(
            TheirDns,
            "No way to reach the recipient's domain.",
            "The recipient's domain publishes no usable mail server: no MX record, and no \
             address to fall back on, or MX records that point to names that do not exist.",
            "Check the domain for typos, then `dig MX DOMAIN +short` and `dig A DOMAIN +short`. \
             If nothing comes back, the domain cannot receive mail; its owner must fix their \
             DNS.",
        ),
    ),
    st(
        (ANY, 4, 5),
        "Mail system congestion (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's mail system is overloaded.",
            "The receiving server is too busy to accept the message now.",
            "Nothing to do: the queue retries later.",
        ),
    ),
    st(
        (ANY, 4, 6),
        "Routing loop detected (RFC 3463)",
        PRECISE,
        i(
            Unclear,
            "The message went round in circles between servers.",
            "The message passed through too many servers (each adds a Received: line) and was \
             stopped: somewhere, forwarding or DNS sends it back where it came from.",
            "Look for forwarding that points back: an alias forwarding to an address that \
             forwards back, or MX records naming a server that relays back to you.",
        ),
    ),
    st(
        (ANY, 4, 7),
        "Delivery time expired (RFC 3463)",
        PRECISE,
        i(
            Unclear,
            "The message could not be delivered in time and was given up.",
            "Every attempt failed until the time allowed for delivery ran out. The real cause \
             is the error of the earlier attempts.",
            "Look at the last error recorded for this recipient in the queue or the bounce, and \
             explain that one.",
        ),
    ),
    // X.5 Mail delivery protocol status
    st(
        (ANY, 5, 0),
        "Other or undefined protocol status (RFC 3463)",
        GENERIC,
        i(
            Unclear,
            "The servers did not agree on the SMTP exchange.",
            "Something in the conversation between the two mail servers went wrong, without a \
             precise reason.",
            "Read the text of the reply. If it names a command or a syntax error, report it to \
             the facteur developers with the reply and the recipient domain.",
        ),
    ),
    st(
        (ANY, 5, 1),
        "Invalid command (RFC 3463)",
        PRECISE,
        i(
            Ours,
            "The recipient's server did not accept a command we sent.",
            "A command of the SMTP conversation was not recognised or not allowed at that \
             point, a sign the two servers disagree.",
            "Report it to the facteur developers with the full reply and the recipient domain.",
        ),
    ),
    st(
        (ANY, 5, 2),
        "Syntax error (RFC 3463)",
        PRECISE,
        i(
            Ours,
            "The recipient's server found a syntax error in a command.",
            "A command this server sent was not written the way the receiving server expects.",
            "Report it to the facteur developers with the full reply and the recipient domain.",
        ),
    ),
    st(
        (ANY, 5, 3),
        "Too many recipients (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "Too many recipients in one go.",
            "The receiving server limits how many recipients one message may have in one \
             transfer.",
            "A temporary refusal needs nothing: the queue sends to the remaining recipients in \
             a later transfer. A final one: split the recipients into smaller groups, or use a \
             mailing list.",
        ),
    ),
    st(
        (ANY, 5, 4),
        "Invalid command arguments (RFC 3463)",
        PRECISE,
        i(
            Ours,
            "The recipient's server refused the arguments of a command.",
            "A command was valid but one of its options or values was not accepted (for \
             example an option the server does not support).",
            "Report it to the facteur developers with the full reply and the recipient domain.",
        ),
    ),
    st(
        (ANY, 5, 5),
        "Wrong protocol version (RFC 3463)",
        PRECISE,
        i(
            Ours,
            "The servers speak different versions of the protocol.",
            "The receiving server does not support the version of the mail protocol used.",
            "Report it to the facteur developers with the full reply and the recipient domain.",
        ),
    ),
    st(
        (ANY, 5, 6),
        "Authentication exchange line is too long (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "A login line sent to the server was too long.",
            "During login (SMTP AUTH) a line was longer than the server accepts.",
            "Check the user name and password configured for the relay; report it to the \
             facteur developers if they are ordinary.",
        ),
    ),
    // X.6 Message content or media status
    st(
        (ANY, 6, 0),
        "Other or undefined media error (RFC 3463)",
        GENERIC,
        i(
            Sender,
            "The recipient's server refused the content of the message.",
            "Something in the message's content or format was not accepted, without a precise \
             reason.",
            "Read the text of the reply; try sending without attachments or special formatting.",
        ),
    ),
    st(
        (ANY, 6, 1),
        "Media not supported (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The message holds content the recipient's server refuses.",
            "The receiving server does not accept one of the content types in the message \
             (often an attachment type it blocks).",
            "Send without the attachment, or share it through a link.",
        ),
    ),
    st(
        (ANY, 6, 2),
        "Conversion required and prohibited (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "The message would need converting, and conversion was forbidden.",
            "The message must be converted to be delivered (for example 8-bit text to 7-bit), \
             but the message or a server forbids conversion.",
            "Send the message again as plain text or with a simpler format.",
        ),
    ),
    st(
        (ANY, 6, 3),
        "Conversion required but not supported (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The message would need converting, and no server can do it.",
            "The message must be converted to be delivered, and the server on the way cannot \
             convert it.",
            "Send the message again as plain text or with a simpler format.",
        ),
    ),
    st(
        (ANY, 6, 4),
        "Conversion with loss performed (RFC 3463)",
        PRECISE,
        i(
            Nobody,
            "The message was converted, losing some of its content.",
            "To deliver it, a server converted the message and something was lost in the \
             conversion (formatting, characters).",
            "",
        ),
    ),
    st(
        (ANY, 6, 5),
        "Conversion failed (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "Converting the message failed.",
            "A server on the way tried to convert the message for delivery and failed.",
            "Send the message again as plain text or with a simpler format.",
        ),
    ),
    st(
        (ANY, 6, 6),
        "Message content not available (RFC 4468)",
        PRECISE,
        i(
            Ours,
            "The content the message pointed to could not be fetched.",
            "The message referred to content stored elsewhere (BURL) that the server could not \
             retrieve.",
            "Send the message again in full.",
        ),
    ),
    st(
        (ANY, 6, 7),
        "Non-ASCII addresses not permitted for that sender/recipient (RFC 6531)",
        PRECISE,
        i(
            Sender,
            "An address with accents or non-Latin letters is not accepted.",
            "The address contains characters outside plain ASCII, and the other side does not \
             support internationalised mail (SMTPUTF8).",
            "Use a plain ASCII address for this correspondent.",
        ),
    ),
    st(
        (ANY, 6, 8),
        "UTF-8 string reply is required, but not permitted by the SMTP client (RFC 6531)",
        PRECISE,
        i(
            Ours,
            "The reply needed UTF-8, which this server did not allow.",
            "The reply involves non-ASCII text (an internationalised address) that this server \
             did not announce it could handle.",
            "Use a plain ASCII address for this correspondent; report it to the facteur \
             developers.",
        ),
    ),
    st(
        (ANY, 6, 9),
        "UTF-8 header message cannot be transferred to one or more recipients (RFC 6531)",
        PRECISE,
        i(
            Sender,
            "A message with non-ASCII addresses cannot reach this recipient.",
            "The message's headers hold addresses with non-ASCII characters, and a server on \
             the way does not support internationalised mail (SMTPUTF8).",
            "Send from and to plain ASCII addresses.",
        ),
    ),
    st(
        (ANY, 6, 10),
        "UTF-8 string reply is required, but not permitted by the SMTP client (RFC 6531; same \
         as X.6.8)",
        PRECISE,
        i(
            Ours,
            "The reply needed UTF-8, which this server did not allow.",
            "The reply involves non-ASCII text (an internationalised address) that this server \
             did not announce it could handle.",
            "Use a plain ASCII address for this correspondent; report it to the facteur \
             developers.",
        ),
    ),
    // X.7 Security or policy status
    st(
        (4, 7, 0),
        "Other or undefined security status (RFC 3463)",
        GENERIC,
        i(
            Unclear,
            "Put off by policy for now, often greylisting or a rate limit.",
            "The recipient's server put the message off for a security or policy reason. The \
             most common is greylisting: the server turns away the first attempt from a sender \
             it does not know, and accepts the retry a few minutes later, because spam \
             programs rarely retry. Large providers also use 4.7.0 to slow down senders they \
             distrust.",
            "Usually nothing: the queue retries, and greylisting lets the retry through within \
             5 to 15 minutes. If it never passes, read the text of the reply: a rate limit or \
             a poor reputation of your IP address needs slower sending and clean SPF, DKIM, \
             DMARC and reverse DNS.",
        ),
    ),
    st(
        (ANY, 7, 0),
        "Other or undefined security status (RFC 3463)",
        GENERIC,
        i(
            Unclear,
            "Refused for a security or policy reason.",
            "The recipient's server refused for a reason of security or policy (spam filtering, \
             sender checks, blocklists) without a precise status.",
            "Read the text of the reply for the reason: it often names a blocklist, SPF, DKIM, \
             DMARC or reverse DNS, each explained by `facteur explain` when quoted.",
        ),
    ),
    st(
        (4, 7, 1),
        "Delivery not authorized, message refused (RFC 3463)",
        GENERIC,
        i(
            Unclear,
            "Put off by the recipient's policy, often greylisting.",
            "The recipient's server does not accept the message from you right now. Often this \
             is greylisting (the first attempt from an unknown sender is turned away, the retry \
             accepted) or a check of your domain that could not complete.",
            "Usually nothing: the queue retries. If it never passes, read the text of the reply \
             for the reason.",
        ),
    ),
    st(
        (ANY, 7, 1),
        "Delivery not authorized, message refused (RFC 3463)",
        GENERIC,
        i(
            Unclear,
            "The recipient's server refuses to accept this message from you.",
            "5.7.1 is the generic \"not allowed\": relaying denied (the server does not handle \
             this domain for you), your IP address or domain blocked, the content judged as \
             spam, or a recipient who accepts mail only from certain senders.",
            "Read the text of the reply for which one. \"Relaying denied\": check the \
             recipient's MX records, or if you send through a smarthost, configure its login. \
             A blocklist or spam: check your IP address's reputation and your SPF, DKIM and \
             DMARC records.",
        ),
    ),
    st(
        (ANY, 7, 2),
        "Mailing list expansion prohibited (RFC 3463)",
        PRECISE,
        i(
            Sender,
            "You may not send to this mailing list.",
            "The address is a mailing list that accepts messages only from its members or \
             moderators.",
            "Subscribe to the list, send from the subscribed address, or ask the list owner.",
        ),
    ),
    st(
        (ANY, 7, 3),
        "Security conversion required but not possible (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The message needs a security conversion that cannot be done.",
            "Delivery would require converting the message's security protocol (such as its \
             encryption), and no server can.",
            "Send the message without encryption or signature, or agree on one with the \
             recipient.",
        ),
    ),
    st(
        (ANY, 7, 4),
        "Security features not supported (RFC 3463)",
        PRECISE,
        i(
            Recipient,
            "The recipient's server lacks a needed security feature.",
            "The message asked for a security feature (signing, encryption) that the receiving \
             server does not support.",
            "Send the message without the security option.",
        ),
    ),
    st(
        (ANY, 7, 5),
        "Cryptographic failure (RFC 3463)",
        PRECISE,
        i(
            Unclear,
            "A cryptographic check failed.",
            "Checking a signature or setting up encryption (TLS between the servers, S/MIME in \
             the message) failed.",
            "If the text mentions TLS or a certificate, see `facteur explain \"TLS handshake \
             failed\"`; otherwise check the message's signature or encryption.",
        ),
    ),
    st(
        (ANY, 7, 6),
        "Cryptographic algorithm not supported (RFC 3463)",
        PRECISE,
        i(
            Unclear,
            "A cryptographic algorithm is not supported.",
            "The message or the connection uses an encryption or signature algorithm the other \
             side does not support.",
            "Use a common algorithm: RSA 2048 with SHA-256 for signatures, TLS 1.2 or later.",
        ),
    ),
    st(
        (ANY, 7, 7),
        "Message integrity failure (RFC 3463)",
        PRECISE,
        i(
            Unclear,
            "The message was altered on the way.",
            "A check showed the message is not what was sent: it was modified or damaged in \
             transit.",
            "Send it again; if it repeats, look for a server or filter on the way that rewrites \
             messages.",
        ),
    ),
    st(
        (ANY, 7, 8),
        "Authentication credentials invalid (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "Login refused: wrong user name or password.",
            "The server asked this server to log in (SMTP AUTH) and the user name or password \
             was wrong.",
            "Check the user name and password configured for the relay (smarthost); they may \
             have changed or expired.",
        ),
    ),
    st(
        (ANY, 7, 9),
        "Authentication mechanism is too weak (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "The login method is too weak for this server.",
            "The server refuses the way this server logged in, as not secure enough.",
            "Use a stronger login method, or log in over an encrypted (TLS) connection.",
        ),
    ),
    st(
        (ANY, 7, 10),
        "Encryption needed (RFC 5248)",
        PRECISE,
        i(
            Ours,
            "The server requires an encrypted connection.",
            "The receiving server accepts this only over an encrypted (TLS) connection, and the \
             connection was not encrypted.",
            "Make sure the connection uses TLS (STARTTLS on port 25 or 587, or port 465).",
        ),
    ),
    st(
        (ANY, 7, 11),
        "Encryption required for requested authentication mechanism (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "Logging in this way requires an encrypted connection.",
            "The login method would send the password readable on the network, so the server \
             requires TLS first.",
            "Use TLS for the relay connection (STARTTLS on port 587, or port 465).",
        ),
    ),
    st(
        (ANY, 7, 12),
        "A password transition is needed (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "The server requires a password change before login.",
            "The account used to log in must change its password (or log in once with a simple \
             method) before this method works.",
            "Log in to the account with the provider's own tools, change the password, and \
             update it in the relay configuration.",
        ),
    ),
    st(
        (ANY, 7, 13),
        "User account disabled (RFC 5248)",
        PRECISE,
        i(
            Unclear,
            "The account is disabled.",
            "The account used to log in, or the recipient's account, has been disabled by its \
             provider (abuse, non-payment, suspected break-in).",
            "If it is the account this server logs in with, contact that provider. If it is the \
             recipient's, tell them some other way.",
        ),
    ),
    st(
        (ANY, 7, 14),
        "Trust relationship required (RFC 5248)",
        PRECISE,
        i(
            Ours,
            "The server accepts mail only from servers it has agreed with.",
            "The receiving server needs a prior trust arrangement (a login, a certificate, an \
             allowed address) with the sending server.",
            "Ask the recipient's administrators what they require.",
        ),
    ),
    st(
        (ANY, 7, 15),
        "Priority level is too low (RFC 6710)",
        PRECISE,
        i(
            Sender,
            "The message's priority is too low for this server right now.",
            "The server only accepts higher-priority messages at the moment.",
            "Send again later, or without a priority.",
        ),
    ),
    st(
        (ANY, 7, 16),
        "Message is too big for the specified priority (RFC 6710)",
        PRECISE,
        i(
            Sender,
            "The message is too big for the priority it asks for.",
            "The server limits the size of messages at this priority.",
            "Send a smaller message or without a priority.",
        ),
    ),
    st(
        (ANY, 7, 17),
        "Mailbox owner has changed (RFC 7293)",
        PRECISE,
        i(
            Sender,
            "The address now belongs to someone else.",
            "The message asked to be delivered only if the mailbox still has the same owner as \
             on a given date; it does not.",
            "Confirm the address with the intended person.",
        ),
    ),
    st(
        (ANY, 7, 18),
        "Domain owner has changed (RFC 7293)",
        PRECISE,
        i(
            Sender,
            "The recipient's domain has changed hands.",
            "The message asked to be delivered only if the domain still has the same owner as \
             on a given date; it does not.",
            "Confirm the address with the intended person.",
        ),
    ),
    st(
        (ANY, 7, 19),
        "RRVS test cannot be completed (RFC 7293)",
        PRECISE,
        i(
            Recipient,
            "The server could not check whether the address changed owner.",
            "The message asked for an ownership check of the address (RRVS) that the receiving \
             server cannot perform.",
            "Send again without that option.",
        ),
    ),
    st(
        (ANY, 7, 20),
        "No passing DKIM signature found (RFC 7372)",
        PRECISE,
        i(
            OurDns,
            "No valid DKIM signature, and the recipient requires one.",
            "DKIM is a signature a sending domain adds to each message, checked against a \
             public key published in its DNS. This message had none that checked out.",
            "Sign outgoing mail with DKIM and publish the public key as a TXT record at \
             SELECTOR._domainkey.YOUR-DOMAIN; check with `dig TXT SELECTOR._domainkey.YOUR-DOMAIN \
             +short`.",
        ),
    ),
    st(
        (ANY, 7, 21),
        "No acceptable DKIM signature found (RFC 7372)",
        PRECISE,
        i(
            OurDns,
            "The message's DKIM signature is valid but not acceptable.",
            "The signature checks out but the recipient does not accept it: a key too short \
             (under 1024 bits), an old algorithm (SHA-1), or a signing domain it does not \
             trust.",
            "Sign with a 2048-bit RSA key and rsa-sha256, with your own domain in d=.",
        ),
    ),
    st(
        (ANY, 7, 22),
        "No valid author-matched DKIM signature found (RFC 7372)",
        PRECISE,
        i(
            OurDns,
            "No DKIM signature matches the domain in the From: address.",
            "The message may be signed, but not by the domain the reader sees in From:, which \
             is what the recipient requires.",
            "Sign with d= set to the From: address's domain (or its parent domain).",
        ),
    ),
    st(
        (ANY, 7, 23),
        "SPF validation failed (RFC 7372)",
        PRECISE,
        i(
            OurDns,
            "Your domain's SPF record does not allow this server to send.",
            "SPF is a DNS TXT record (starting with v=spf1) where a domain lists the servers \
             allowed to send its mail. The recipient looked it up for the sender's domain: this \
             server's IP address is not in it, and the record says to refuse such mail (-all).",
            "Add this server to your domain's SPF record, for example `v=spf1 mx \
             ip4:YOUR-IPV4 ip6:YOUR-IPV6 -all`, and check with `dig TXT YOUR-DOMAIN +short`. \
             If you send through a smarthost, add what its provider documents (include:…).",
        ),
    ),
    st(
        (ANY, 7, 24),
        "SPF validation error (RFC 7372)",
        PRECISE,
        i(
            OurDns,
            "Your domain's SPF record could not be checked.",
            "SPF is a DNS TXT record (starting with v=spf1) listing the servers allowed to send \
             a domain's mail. Evaluating yours failed: a syntax error, two v=spf1 records, more \
             than 10 DNS lookups (include:, a, mx, redirect), or DNS that did not answer.",
            "Check `dig TXT YOUR-DOMAIN +short`: exactly one record starting with v=spf1, valid \
             syntax, at most 10 include/a/mx/redirect terms in all (an SPF checker counts \
             them).",
        ),
    ),
    st(
        (ANY, 7, 25),
        "Reverse DNS validation failed (RFC 7372)",
        PRECISE,
        i(
            OurDns,
            "This server's IP address has no matching reverse DNS name.",
            "Receiving servers look up the name of the sending IP address (reverse DNS, a PTR \
             record) and check that this name points back to the same address. For this \
             server's IP there is no name, or it does not match.",
            "Ask whoever provides your IP address (hosting provider, ISP) to set its reverse \
             DNS to your server's name, such as mail.YOUR-DOMAIN, and make that name's A/AAAA \
             record point to the same IP. Check with `dig -x YOUR-IP +short`. Home \
             connections usually cannot: send through a smarthost.",
        ),
    ),
    st(
        (ANY, 7, 26),
        "Multiple authentication checks failed (RFC 7372)",
        PRECISE,
        i(
            OurDns,
            "Failed the recipient's sender checks (SPF, DKIM, DMARC).",
            "Receiving servers tell real mail from forgeries with three DNS-based checks: SPF \
             (is this server allowed to send for the domain?), DKIM (is the message signed by \
             the domain?) and DMARC (does a passing check match the domain in From:, and what \
             to do otherwise). Several failed; Gmail uses this code when the domain's DMARC \
             policy says to reject such mail.",
            "Publish an SPF record listing this server, sign outgoing mail with DKIM, and make \
             sure the domain that passes is the From: domain (DMARC \"alignment\"). Check `dig \
             TXT YOUR-DOMAIN +short`, `dig TXT SELECTOR._domainkey.YOUR-DOMAIN +short` and \
             `dig TXT _dmarc.YOUR-DOMAIN +short`.",
        ),
    ),
    st(
        (ANY, 7, 27),
        "Sender address has null MX (RFC 7505)",
        PRECISE,
        i(
            OurDns,
            "The sender's domain declares that it receives no mail.",
            "The sender's domain publishes a \"null MX\" (`0 .`), so replies and bounces could \
             never reach it; the recipient refuses mail from such a domain.",
            "Replace the null MX of your domain with a real MX record naming this server, or \
             send from a domain that receives mail.",
        ),
    ),
    st(
        (ANY, 7, 28),
        "Mail flood detected (IANA registry)",
        PRECISE,
        i(
            Ours,
            "The recipient sees a flood of similar messages from you.",
            "The receiving server saw an abnormal volume of similar mail from your IP address \
             or domain and treats it as abuse. A hacked account or script sending spam is a \
             common cause.",
            "Look at the queue for mail you did not expect; change the password of any account \
             that sends it. Send bulk mail more slowly.",
        ),
    ),
    st(
        (ANY, 7, 29),
        "ARC validation failure (RFC 8617)",
        PRECISE,
        i(
            Unclear,
            "The forwarding chain of the message did not check out (ARC).",
            "The message came through a forwarder or mailing list. ARC is the set of signatures \
             such intermediaries add to vouch for the checks they made; here it failed.",
            "If you run the forwarder or list, check its ARC signing; otherwise write to the \
             forwarder's administrator.",
        ),
    ),
    st(
        (ANY, 7, 30),
        "REQUIRETLS support required (RFC 8689)",
        PRECISE,
        i(
            Recipient,
            "REQUIRETLS: a server on the way cannot guarantee encryption.",
            "The message asked (REQUIRETLS) to travel only over verified, encrypted \
             connections, and a server on the way does not support that.",
            "Send again without the REQUIRETLS option, or ask the recipient's provider to \
             support it.",
        ),
    ),
];

/// The basic reply codes of RFC 5321 §4.2.2-4.2.3, with RFC 3207, RFC 4954 and RFC 7504.
pub(super) static CODES: &[CodeEntry] = &[
    cd(
        211,
        "System status, or system help reply (RFC 5321)",
        PRECISE,
        SUCCESS,
    ),
    cd(214, "Help message (RFC 5321)", PRECISE, SUCCESS),
    cd(220, "Service ready (RFC 5321)", PRECISE, SUCCESS),
    cd(
        221,
        "Service closing transmission channel (RFC 5321)",
        PRECISE,
        SUCCESS,
    ),
    cd(235, "Authentication succeeded (RFC 4954)", PRECISE, SUCCESS),
    cd(
        250,
        "Requested mail action okay, completed (RFC 5321)",
        PRECISE,
        SUCCESS,
    ),
    cd(
        251,
        "User not local; will forward (RFC 5321)",
        PRECISE,
        SUCCESS,
    ),
    cd(
        252,
        "Cannot VRFY user, but will accept message and attempt delivery (RFC 5321)",
        PRECISE,
        SUCCESS,
    ),
    cd(
        334,
        "Server challenge during authentication (RFC 4954)",
        PRECISE,
        SUCCESS,
    ),
    cd(354, "Start mail input (RFC 5321)", PRECISE, SUCCESS),
    cd(
        421,
        "Service not available, closing transmission channel (RFC 5321)",
        GENERIC,
        i(
            Recipient,
            "The recipient's server is temporarily unavailable.",
            "The receiving server is busy, restarting, or limiting how many connections or \
             messages it takes from you at once (\"too many connections\").",
            "Nothing to do: the queue retries later. If it lasts for hours, read the text of \
             the reply: a rate limit or a poor reputation of your IP address may be the reason.",
        ),
    ),
    cd(
        432,
        "A password transition is needed (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "The server requires a password change before login.",
            "The account used to log in must change its password before this login works.",
            "Change the account's password with the provider's own tools and update it in the \
             relay configuration.",
        ),
    ),
    cd(
        450,
        "Requested mail action not taken: mailbox unavailable (RFC 5321)",
        GENERIC,
        i(
            Recipient,
            "Mailbox temporarily unavailable, or greylisting.",
            "The receiving server cannot take the message for this mailbox right now: the \
             mailbox is busy, or the server practises greylisting (it turns away the first \
             attempt from an unknown sender and accepts the retry minutes later).",
            "Nothing to do: the queue retries, and greylisting lets the retry through within \
             5 to 15 minutes.",
        ),
    ),
    cd(
        451,
        "Requested action aborted: local error in processing (RFC 5321)",
        GENERIC,
        i(
            Recipient,
            "The recipient's server had a temporary problem.",
            "The receiving server hit an error of its own while handling the message, or is \
             greylisting, or could not check your domain's DNS at that moment.",
            "Nothing to do: the queue retries. If it never passes, read the text of the reply.",
        ),
    ),
    cd(
        452,
        "Requested action not taken: insufficient system storage (RFC 5321)",
        GENERIC,
        i(
            Recipient,
            "The recipient's server cannot take more right now.",
            "The receiving server is short of storage, or has taken as many recipients as it \
             allows in one transfer.",
            "Nothing to do: the queue retries the remaining recipients later.",
        ),
    ),
    cd(
        454,
        "TLS not available due to temporary reason, or temporary authentication failure (RFC \
         3207, RFC 4954)",
        PRECISE,
        i(
            Recipient,
            "The remote server cannot do TLS or login right now.",
            "The remote server could not start TLS encryption or check a login just now.",
            "Nothing to do: the queue retries. If it lasts, the remote server's TLS setup may be \
             broken.",
        ),
    ),
    cd(
        455,
        "Server unable to accommodate parameters (RFC 5321)",
        PRECISE,
        i(
            Recipient,
            "The recipient's server cannot take the message's options now.",
            "The receiving server temporarily cannot accept an option sent with the sender or \
             recipient address.",
            "Nothing to do: the queue retries.",
        ),
    ),
    cd(
        500,
        "Syntax error, command unrecognized (RFC 5321)",
        GENERIC,
        i(
            Ours,
            "The recipient's server did not understand a command.",
            "A command of the SMTP conversation was not recognised, a sign the two servers \
             disagree.",
            "Report it to the facteur developers with the full reply and the recipient domain.",
        ),
    ),
    cd(
        501,
        "Syntax error in parameters or arguments (RFC 5321)",
        GENERIC,
        i(
            Ours,
            "The recipient's server refused the form of a command.",
            "A command's argument was refused: often an address, or the name this server gives \
             itself when it says hello (HELO/EHLO).",
            "Read the text of the reply for which argument; check the sender address and this \
             server's host name.",
        ),
    ),
    cd(
        502,
        "Command not implemented (RFC 5321)",
        PRECISE,
        i(
            Ours,
            "The recipient's server does not implement a command sent.",
            "The receiving server does not support one of the commands used.",
            "Report it to the facteur developers with the full reply and the recipient domain.",
        ),
    ),
    cd(
        503,
        "Bad sequence of commands (RFC 5321)",
        GENERIC,
        i(
            Ours,
            "Commands came in an order the recipient's server did not accept.",
            "The server expected something else first, often a login or encryption (STARTTLS), \
             or an earlier command had been refused.",
            "Read the text of the reply; if it asks for authentication, configure the relay \
             login, otherwise report it to the facteur developers.",
        ),
    ),
    cd(
        504,
        "Command parameter not implemented (RFC 5321)",
        PRECISE,
        i(
            Ours,
            "The recipient's server does not support an option of a command.",
            "A command was recognised but one of its options is not supported.",
            "Report it to the facteur developers with the full reply and the recipient domain.",
        ),
    ),
    cd(
        521,
        "Host does not accept mail (RFC 7504)",
        PRECISE,
        i(
            Sender,
            "This server never accepts mail.",
            "The host answered but declares it does not receive mail at all.",
            "Check the recipient's address; if it is right, its domain's MX records point to \
             the wrong server and its owner must fix them.",
        ),
    ),
    cd(
        530,
        "Authentication required (RFC 4954)",
        GENERIC,
        i(
            Ours,
            "The server requires a login before it accepts mail.",
            "Servers that receive mail for their own users need no login; a relay or submission \
             server does. This one wants a user name and password (or encryption first).",
            "If this is your smarthost, configure its user name and password. If it is the \
             recipient's MX, read the text: it may require STARTTLS first.",
        ),
    ),
    cd(
        534,
        "Authentication mechanism is too weak (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "The login method is too weak for this server.",
            "The server refuses the way this server logged in, as not secure enough.",
            "Use a stronger login method, or log in over TLS.",
        ),
    ),
    cd(
        535,
        "Authentication credentials invalid (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "Login refused: wrong user name or password.",
            "The relay refused the user name or password this server logged in with.",
            "Check the user name and password configured for the relay (smarthost); some \
             providers require an application password.",
        ),
    ),
    cd(
        538,
        "Encryption required for requested authentication mechanism (RFC 4954)",
        PRECISE,
        i(
            Ours,
            "Logging in this way requires an encrypted connection.",
            "The server requires TLS before this login method.",
            "Use TLS for the relay connection (STARTTLS on port 587, or port 465).",
        ),
    ),
    cd(
        550,
        "Requested action not taken: mailbox unavailable (RFC 5321)",
        GENERIC,
        i(
            Unclear,
            "Refused: mailbox unavailable or not allowed.",
            "550 is used both for an address that does not exist and for a refusal by policy \
             (spam filter, blocklist, sender checks); the text of the reply says which.",
            "If the text mentions an unknown user, check the address. Otherwise look for what \
             it names: a blocklist, SPF, DKIM, DMARC, reverse DNS.",
        ),
    ),
    cd(
        551,
        "User not local; please try <forward-path> (RFC 5321)",
        PRECISE,
        i(
            Sender,
            "The recipient is not hosted on that server.",
            "The server does not handle this recipient; it may give their new address in the \
             text.",
            "Use the address the reply suggests, or check that the recipient domain's MX \
             records point to its real mail server.",
        ),
    ),
    cd(
        552,
        "Requested mail action aborted: exceeded storage allocation (RFC 5321)",
        GENERIC,
        i(
            Recipient,
            "The recipient's mailbox is full, or the message is too big.",
            "The recipient has used up their storage (quota), or the message is larger than \
             the server accepts.",
            "If the mailbox is full, wait or tell the recipient some other way. If the message \
             is too big, share files through a link instead of attaching them.",
        ),
    ),
    cd(
        553,
        "Requested action not taken: mailbox name not allowed (RFC 5321)",
        GENERIC,
        i(
            Sender,
            "An address was refused as not allowed or not written correctly.",
            "The server refused the recipient's or the sender's address: wrong syntax, or a \
             name it does not permit.",
            "Check both addresses for typos and forbidden characters.",
        ),
    ),
    cd(
        554,
        "Transaction failed (RFC 5321)",
        GENERIC,
        i(
            Unclear,
            "Refused, usually by a spam filter or a blocklist.",
            "554 is the general refusal, most often given by spam filters and when the sending \
             IP address is on a blocklist (a public list of addresses known to send spam).",
            "Read the text of the reply. Check whether your IP address is on a blocklist (for \
             example with MXToolbox's blacklist check) and that SPF, DKIM, DMARC and reverse \
             DNS are in place.",
        ),
    ),
    cd(
        555,
        "MAIL FROM/RCPT TO parameters not recognized or not implemented (RFC 5321)",
        PRECISE,
        i(
            Ours,
            "The recipient's server does not support an address option.",
            "An option given with the sender or recipient address (such as SIZE, SMTPUTF8 or \
             delivery-notification options) is not supported there.",
            "Report it to the facteur developers with the full reply and the recipient domain.",
        ),
    ),
    cd(
        556,
        "Domain does not accept mail (RFC 7504)",
        PRECISE,
        i(
            Sender,
            "The recipient's domain does not accept mail.",
            "The domain declares (usually with a \"null MX\" record) that it never receives \
             mail.",
            "Use another address for this recipient.",
        ),
    ),
];

/// Every success or intermediate reply (2xx, 3xx, 2.X.X).
pub(super) const SUCCESS: Info = i(
    Nobody,
    "Success: the remote server accepted.",
    "This reply reports that the remote server did what was asked (accepted the message, the \
     recipient or the command). Nothing went wrong.",
    "",
);

/// Sharpen a generic row with what the text says. First match wins, so the specific come
/// before the general ("spamhaus" before "spam", "dmarc" before "spf").
pub(super) static REFINEMENTS: &[Refinement] = &[
    rf(
        &["dmarc"],
        &[(7, 26), (7, 1)],
        i(
            OurDns,
            "Rejected by DMARC: SPF and DKIM failed for the From: domain.",
            "DMARC is a DNS record (at _dmarc.YOUR-DOMAIN) telling receivers what to do with \
             mail that claims to come from your domain but fails both SPF (is this server \
             allowed to send for the domain?) and DKIM (is the message signed by the domain?), \
             where the passing domain must match the one in From: (\"alignment\"). Your \
             domain's policy (p=reject or p=quarantine) told the recipient to refuse this \
             message.",
            "Publish an SPF record listing this server, sign outgoing mail with DKIM for the \
             From: domain, and check the three records: `dig TXT YOUR-DOMAIN +short`, `dig TXT \
             SELECTOR._domainkey.YOUR-DOMAIN +short`, `dig TXT _dmarc.YOUR-DOMAIN +short`. \
             While fixing, p=none makes receivers report instead of reject.",
        ),
    ),
    rf(
        &[
            "spf or dkim",
            "sender is unauthenticated",
            "unauthenticated",
        ],
        &[(7, 26), (7, 1)],
        i(
            OurDns,
            "Unauthenticated: neither SPF nor DKIM passed for your domain.",
            "The recipient (Gmail, for one) requires every sender to pass at least SPF (this \
             server listed in the domain's SPF record) or DKIM (the message signed by the \
             domain). This message passed neither.",
            "Add this server to your domain's SPF record (`v=spf1 mx ip4:YOUR-IPV4 -all`, check \
             `dig TXT YOUR-DOMAIN +short`) and sign outgoing mail with DKIM (public key at \
             SELECTOR._domainkey.YOUR-DOMAIN).",
        ),
    ),
    rf(
        &["spf", "sender policy framework"],
        &[],
        i(
            OurDns,
            "Refused by SPF: your domain does not list this server.",
            "SPF is a DNS TXT record (starting with v=spf1) where a domain lists the servers \
             allowed to send its mail. The recipient found this server's IP address missing \
             from the sender domain's record, or the record broken.",
            "Add this server to your domain's SPF record, for example `v=spf1 mx \
             ip4:YOUR-IPV4 -all`, and check with `dig TXT YOUR-DOMAIN +short` (exactly one \
             v=spf1 record). With a smarthost, include what its provider documents.",
        ),
    ),
    rf(
        &["dkim", "domainkeys"],
        &[],
        i(
            OurDns,
            "Refused by DKIM: the signature is missing or does not verify.",
            "DKIM is a signature a sending domain adds to each message, checked against a \
             public key in its DNS. The recipient found none that checked out: not signed, a \
             key missing from DNS, or a message modified after signing.",
            "Sign outgoing mail with DKIM and publish the key: `dig TXT \
             SELECTOR._domainkey.YOUR-DOMAIN +short` must return it (the selector is the s= of \
             the DKIM-Signature header).",
        ),
    ),
    rf(
        &[
            "reverse dns",
            "reverse lookup",
            "reverse hostname",
            "rdns",
            "ptr",
            "cannot find your hostname",
            "no reverse",
        ],
        &[],
        i(
            OurDns,
            "No matching reverse DNS name for your server's IP address.",
            "Receiving servers look up the name of the sending IP address (reverse DNS, a PTR \
             record) and check it points back to the same address. Mail from an address \
             without one looks like it comes from an infected home computer.",
            "Ask whoever provides your IP address (hosting provider, ISP) to set its reverse \
             DNS to your server's name, such as mail.YOUR-DOMAIN, with that name's A/AAAA \
             record pointing back. Check with `dig -x YOUR-IP +short`. Home connections \
             usually cannot: send through a smarthost.",
        ),
    ),
    rf(
        &[
            "spamhaus",
            "spamcop",
            "barracuda",
            "sorbs",
            "blacklist",
            "black list",
            "blocklist",
            "block list",
            "blocked using",
            "listed",
            "dnsbl",
            "rbl",
            "banned sending ip",
            "banned",
            "sender office com",
        ],
        &[(7, 606), (7, 511)],
        i(
            Ours,
            "Your server's IP address is on a blocklist.",
            "The recipient's server checked the sending IP address against a blocklist (a \
             public list of addresses that send spam, such as Spamhaus) or its own list of \
             banned addresses, and found it. Addresses get listed for spam sent from them, for \
             an open relay or hacked account, or just for being in a home or dynamic range.",
            "Look your IP address up (https://check.spamhaus.org/, MXToolbox's blacklist \
             check), fix the cause it gives (a hacked account, a home IP range), then ask for \
             removal on the list's site (Microsoft: https://sender.office.com/). Meanwhile, \
             send through a smarthost.",
        ),
    ),
    rf(
        &[
            "greylist",
            "graylist",
            "grey list",
            "gray list",
            "greylisting",
        ],
        &[],
        i(
            Recipient,
            "Greylisted: unknown senders must retry later; this is normal.",
            "Greylisting turns away the first attempt from a sender the server does not know \
             and accepts a retry a few minutes later, because spam programs rarely retry. It \
             is normal and harmless.",
            "Nothing to do: the queue retries, and the message usually passes within 5 to 15 \
             minutes.",
        ),
    ),
    rf(
        &["too many recipients"],
        &[],
        i(
            Sender,
            "Too many recipients in one go.",
            "The receiving server limits how many recipients one message may have in one \
             transfer.",
            "A temporary refusal needs nothing: the queue sends to the remaining recipients in \
             a later transfer. A final one: split the recipients into smaller groups.",
        ),
    ),
    rf(
        &[
            "rate limit",
            "ratelimit",
            "rate limited",
            "unusual rate",
            "too many connections",
            "too many messages",
            "too many mails",
            "too many emails",
            "sending rate",
            "throttl",
            "slow down",
            "exceeded the",
        ],
        &[],
        i(
            Ours,
            "Rate limited: too much mail from you in a short time.",
            "Large providers limit how fast one IP address may send, and limit newer or less \
             trusted senders more. Past the limit they defer the rest.",
            "A temporary refusal needs nothing: the queue retries later. Send bulk mail more \
             slowly, and make sure SPF, DKIM, DMARC and reverse DNS are correct to build a good \
             reputation.",
        ),
    ),
    rf(
        &["reputation", "suspicious"],
        &[],
        i(
            Ours,
            "Your IP address or domain has a poor reputation there.",
            "The recipient's provider scores every sender from past mail (spam complaints, \
             volume, authentication). A new server, a shared or home IP address, or missing \
             SPF/DKIM/DMARC gives a low score, and its mail is deferred or refused.",
            "Make sure SPF, DKIM, DMARC and reverse DNS all pass, check your IP address on \
             blocklists, and send steadily without bursts; Google Postmaster Tools and \
             Microsoft SNDS show how they see you. A smarthost with a good reputation helps.",
        ),
    ),
    rf(
        &["spam", "unsolicited", "bulk mail", "junk", "phishing"],
        &[],
        i(
            Sender,
            "The message was judged to be spam.",
            "The recipient's spam filter scored this message (its content, links, or the \
             reputation of the sender) as unwanted mail.",
            "Make sure SPF, DKIM and DMARC pass for your domain and your IP address is on no \
             blocklist; avoid link shorteners and spam-like wording. Test a message at \
             mail-tester.com.",
        ),
    ),
    rf(
        &["virus", "malware", "infected", "dangerous attachment"],
        &[],
        i(
            Sender,
            "Refused as carrying a virus or a dangerous attachment.",
            "The recipient's filter found, or suspected, malicious content: often an executable, \
             a macro document or an archive it cannot inspect.",
            "Check the attachment with an antivirus; share files through a link instead of \
             attaching executables or archives.",
        ),
    ),
    rf(
        &["relay", "relaying"],
        &[],
        i(
            Unclear,
            "Relaying denied: the server does not handle this domain for you.",
            "A mail server accepts, without a login, only mail for the domains it hosts. This \
             one does not consider itself responsible for the recipient's domain, or, if it is \
             your smarthost, it wants you to log in first.",
            "Delivering directly: check the recipient domain's MX records (`dig MX DOMAIN \
             +short`) point to its real mail server. Through a smarthost: configure its user \
             name and password (SMTP authentication, usually on port 587).",
        ),
    ),
    rf(
        &[
            "authentication required",
            "auth required",
            "authentication is required",
            "must authenticate",
            "not authenticated",
            "login required",
        ],
        &[],
        i(
            Ours,
            "The server requires a login before it accepts mail.",
            "This server is acting as a relay or submission server, which accepts mail only \
             from users who log in.",
            "Configure the user name and password of the smarthost (relay), usually on port 587 \
             with TLS.",
        ),
    ),
    rf(
        &[
            "starttls",
            "tls",
            "ssl",
            "encryption required",
            "requires encryption",
            "must use encryption",
        ],
        &[],
        i(
            Unclear,
            "Encryption (TLS) is required, or setting it up failed.",
            "The recipient's server accepts mail only over TLS, the encryption between mail \
             servers, and the connection was not encrypted, or setting it up failed.",
            "Check this server can use TLS to outside servers (its CA certificates are up to \
             date). If the remote certificate is at fault, it is the recipient's provider who \
             must fix it.",
        ),
    ),
    rf(
        &["helo", "ehlo", "fully qualified", "fqdn"],
        &[],
        i(
            Ours,
            "The name this server announces itself with was refused.",
            "At the start of the conversation a server gives its own name (HELO/EHLO). The \
             recipient requires a real public host name, one that exists in DNS, preferably the \
             same as your IP address's reverse DNS.",
            "Configure this server's host name as a full public name such as mail.YOUR-DOMAIN \
             with an A/AAAA record pointing to its IP address, and the same name as reverse \
             DNS.",
        ),
    ),
    rf(
        &[
            "sender address rejected",
            "sender rejected",
            "sender domain",
            "sender verify",
            "domain of sender",
            "unverified sender",
        ],
        &[],
        i(
            OurDns,
            "The sender's address was refused.",
            "The recipient's server checked the sender's address or domain and did not like \
             it: the domain has no public DNS, or the server could not verify the address \
             exists.",
            "Make sure your domain resolves publicly (`dig MX YOUR-DOMAIN +short`) and the \
             sender address exists and accepts mail, bounces included.",
        ),
    ),
    rf(
        &[
            "mailbox full",
            "mailbox is full",
            "inbox is full",
            "full mailbox",
            "quota",
            "over quota",
            "overquota",
            "storage allocation",
            "mailbox size limit",
        ],
        &[],
        i(
            Recipient,
            "The recipient's mailbox is full.",
            "The recipient has used all the space their provider gives them (their quota), so \
             new mail is refused until they delete some.",
            "Nothing to change on your side. Wait and send again later, or tell the recipient \
             some other way that their mailbox is full.",
        ),
    ),
    rf(
        &[
            "too large",
            "too big",
            "size limit",
            "message size",
            "maximum size",
            "exceeds size",
            "message length",
        ],
        &[],
        i(
            Sender,
            "The message is too big for the recipient's server.",
            "The receiving server has a size limit for a message, attachments included, and \
             this one is over it. Attachments grow by about a third when sent.",
            "Send a smaller message: share big files through a link instead of attaching them.",
        ),
    ),
    rf(
        &[
            "domain does not exist",
            "domain not found",
            "no such domain",
            "unknown domain",
            "host not found",
            "host unknown",
            "nxdomain",
        ],
        &[],
        i(
            Sender,
            "The recipient's domain does not exist.",
            "The part of the address after the @ is not a domain that exists in DNS.",
            "Check the domain for typos (gmial.com for gmail.com).",
        ),
    ),
    rf(
        &[
            "user unknown",
            "unknown user",
            "does not exist",
            "no such user",
            "no such mailbox",
            "no such recipient",
            "no mailbox",
            "unknown recipient",
            "recipient unknown",
            "invalid recipient",
            "recipient not found",
            "user not found",
            "mailbox not found",
            "address not found",
            "not a valid mailbox",
            "invalid mailbox",
            "unrouteable address",
        ],
        &[],
        i(
            Sender,
            "The recipient's address does not exist.",
            "The recipient's server says it has no mailbox by this name: a typo, an account \
             that was closed, or an old address.",
            "Check the address for typos and confirm it with the recipient some other way. \
             Nothing needs changing on this server.",
        ),
    ),
    rf(
        &[
            "disabled",
            "inactive",
            "suspended",
            "deactivated",
            "account closed",
            "no longer active",
            "no longer in use",
        ],
        &[],
        i(
            Recipient,
            "The recipient's mailbox is disabled.",
            "The account exists but takes no mail: it was suspended, closed or frozen by its \
             provider.",
            "Contact the recipient some other way; send again if they reactivate it.",
        ),
    ),
    Refinement {
        words: &[
            "try again later",
            "try later",
            "please retry",
            "retry later",
            "temporarily deferred",
            "temporarily rejected",
            "deferred",
        ],
        also: &[],
        temporary_only: true,
        info: i(
            Recipient,
            "Deferred: the recipient's server asks to try again later.",
            "The receiving server put the message off without refusing it: most often \
             greylisting (the first attempt from an unknown sender is turned away and the \
             retry accepted), or a temporary load or rate limit.",
            "Nothing to do: the queue retries. If it never passes, look at the reply of the \
             last attempts for another reason.",
        ),
    },
    rf(
        &[
            "blocked",
            "not allowed",
            "denied",
            "prohibited",
            "rejected by policy",
        ],
        &[],
        i(
            Unclear,
            "Blocked by the recipient's filters.",
            "The recipient's server refuses mail from your server, your domain or this sender \
             by its own policy, without saying more.",
            "Check your IP address on blocklists (MXToolbox's blacklist check) and that SPF, \
             DKIM, DMARC and reverse DNS pass. If all is clean, write to postmaster@ the \
             recipient's domain with the full reply.",
        ),
    ),
];

/// What the queue records when there was no reply to quote. First match wins.
pub(super) static OUTCOMES: &[Outcome] = &[
    oc(
        &["dane", "tlsa"],
        (4, 7, 5),
        false,
        i(
            TheirDns,
            "The recipient's server does not match its TLSA (DANE) records.",
            "The mail host's zone is signed with DNSSEC and publishes TLSA records \
             (_25._tcp.MX-HOST) saying which certificate its server uses; the server showed \
             another one, offered no TLS, or the records could not be read. RFC 7672 forbids \
             sending anyway: the message waits and is retried.",
            "Compare `dig TLSA _25._tcp.MX-HOST +dnssec` with the certificate from `openssl \
             s_client -starttls smtp -connect MX-HOST:25`. Usually the recipient renewed their \
             certificate without updating the TLSA record first: only they can fix it. A DNS \
             answer that fails validation (SERVFAIL) is also on their side.",
        ),
    ),
    oc(
        &["mta sts"],
        (4, 7, 5),
        false,
        i(
            TheirDns,
            "The recipient's MTA-STS policy does not allow this delivery.",
            "The recipient's domain publishes an MTA-STS policy in enforce mode (RFC 8461): \
             mail only to the MX hosts it lists, over TLS with a valid certificate. The MX \
             hosts found are not in the list, or their certificate did not verify, so the \
             message waits rather than go elsewhere or unencrypted.",
            "Fetch https://mta-sts.DOMAIN/.well-known/mta-sts.txt and compare its mx: lines \
             with `dig MX DOMAIN +short`; test the certificate with `openssl s_client \
             -starttls smtp -connect MX-HOST:25`. Only the recipient's provider can fix a \
             mismatch.",
        ),
    ),
    oc(
        &[
            "port 25 blocked",
            "port 25 is blocked",
            "port 25 appears blocked",
            "port 25 seems blocked",
            "every mx timed out",
            "all mx timed out",
            "all mx hosts timed out",
            "all mx servers timed out",
        ],
        (4, 4, 1),
        false,
        i(
            Ours,
            "Outgoing port 25 seems blocked on this server's network.",
            "Every mail server tried timed out on port 25, the port servers deliver mail to \
             each other on. When all of them time out, the cause is almost never the \
             recipients: home internet providers and many cloud hosts block outgoing port 25 \
             to stop infected computers from sending spam.",
            "Ask your provider to unblock outgoing port 25 (some cloud hosts do on request), or \
             send through a smarthost: a relay such as your internet provider's SMTP server or \
             a sending service, reached on port 587 with a user name and password. Test with \
             `nc -zv gmail-smtp-in.l.google.com 25`.",
        ),
    ),
    oc(
        &["null mx"],
        (5, 1, 10),
        true,
        i(
            Sender,
            "The recipient's domain declares that it receives no mail.",
            "The domain publishes a \"null MX\" (an MX record of `0 .`), its way of saying it \
             never accepts mail. No address at this domain can be written to.",
            "Use another address for this recipient.",
        ),
    ),
    oc(
        &[
            "servfail",
            "temporary failure in name resolution",
            "dns timeout",
            "dns timed out",
            "dns error",
            "dns lookup failed",
            "resolver",
        ],
        (4, 4, 3),
        false,
        i(
            Unclear,
            "A DNS lookup failed for now.",
            "Finding the recipient domain's mail servers failed temporarily: either this \
             server's DNS resolver is not working, or the domain's DNS servers did not answer.",
            "Check this server resolves names: `dig MX gmail.com +short`. If that works but \
             `dig MX DOMAIN +short` fails, the recipient's DNS is at fault and the queue \
             retries.",
        ),
    ),
    oc(
        &[
            "nxdomain",
            "domain not found",
            "no such domain",
            "domain does not exist",
            "host not found",
            "name or service not known",
            "unknown host",
            "non existent domain",
        ],
        (5, 1, 2),
        true,
        i(
            Sender,
            "The recipient's domain does not exist.",
            "DNS says the part of the address after the @ is not a registered domain: a typo, \
             or a domain that has expired.",
            "Check the domain for typos (gmial.com for gmail.com); `dig DOMAIN` shows NXDOMAIN \
             for a domain that does not exist.",
        ),
    ),
    oc(
        &[
            "no mx",
            "no mail server",
            "no usable mx",
            "no address record",
            "no a or aaaa",
        ],
        (5, 4, 4),
        true,
        i(
            TheirDns,
            "The recipient's domain publishes no mail server.",
            "The domain exists but has no MX record naming a mail server, and no address to fall \
             back on, so mail for it cannot be delivered anywhere.",
            "Check the address for typos. `dig MX DOMAIN +short` and `dig A DOMAIN +short` show \
             what it publishes; if both are empty, the domain's owner must add an MX record.",
        ),
    ),
    oc(
        &["tls", "ssl", "certificate", "x509", "x 509", "handshake"],
        (4, 7, 5),
        false,
        i(
            Unclear,
            "The encrypted (TLS) connection to the recipient's server failed.",
            "Servers encrypt mail between them with TLS. Setting it up failed: the remote \
             certificate is expired, self-signed or for another name, the two sides share no \
             protocol version, or this server's list of trusted authorities is outdated.",
            "Test with `openssl s_client -starttls smtp -connect MX-HOST:25` to see the \
             certificate and the error. If only this domain fails, its provider must fix their \
             certificate; if all fail, update this server's CA certificates and clock.",
        ),
    ),
    oc(
        &["connection refused", "refused"],
        (4, 4, 1),
        false,
        i(
            Recipient,
            "The recipient's server refused the connection.",
            "The machine answered, but nothing accepts mail on port 25 there: the mail service \
             is down, or a firewall rejects the connection.",
            "Nothing to do if it is temporary: the queue retries. If it lasts, check the \
             domain's MX records (`dig MX DOMAIN +short`) point to a real mail server.",
        ),
    ),
    oc(
        &[
            "no route to host",
            "network is unreachable",
            "network unreachable",
            "host unreachable",
            "host is unreachable",
        ],
        (4, 4, 1),
        false,
        i(
            Ours,
            "This server's network cannot reach the recipient's server.",
            "The network says there is no path to that address. Often this server has no IPv6 \
             connectivity while the recipient's server has an IPv6 address, or a firewall or \
             routing problem on your side.",
            "Check this server's connectivity (`ping -6 gmail.com`, `ping -4 gmail.com`); if \
             IPv6 is not available, disable it for outgoing mail. The queue retries.",
        ),
    ),
    oc(
        &[
            "timed out",
            "timeout",
            "time out",
            "no response",
            "did not respond",
            "not responding",
        ],
        (4, 4, 1),
        false,
        i(
            Unclear,
            "The recipient's server did not answer in time.",
            "The connection got no answer: the recipient's server is down or overloaded, or \
             outgoing connections to port 25 are blocked on this server's network.",
            "If only this domain fails, wait: the queue retries. If every outside server times \
             out, your provider blocks port 25 (common on home connections): ask them to open \
             it, or send through a smarthost (a relay on port 587 with a login). Test with \
             `nc -zv MX-HOST 25`.",
        ),
    ),
    oc(
        &[
            "connection reset",
            "reset by peer",
            "broken pipe",
            "connection closed",
            "unexpected eof",
            "lost connection",
            "connection lost",
            "eof",
        ],
        (4, 4, 2),
        false,
        i(
            Unclear,
            "The connection broke during the exchange.",
            "The connection to the recipient's server was cut before the message was accepted: \
             a network problem, an overloaded server, or a server that drops senders it \
             distrusts.",
            "Usually nothing: the queue retries. If it happens with every server, check this \
             server's network and whether your IP address is on a blocklist.",
        ),
    ),
    oc(
        &[
            "mail loop",
            "routing loop",
            "too many hops",
            "loop detected",
            "loops back",
        ],
        (5, 4, 6),
        true,
        i(
            Unclear,
            "The message went round in circles between servers.",
            "The message passed through too many servers and was stopped: forwarding or MX \
             records send it back where it came from.",
            "Look for forwarding that points back (an alias to an address that forwards back) \
             or MX records naming a server that relays back to you.",
        ),
    ),
    oc(
        &[
            "delivery time expired",
            "expired",
            "too long in queue",
            "gave up",
            "giving up",
        ],
        (5, 4, 7),
        true,
        i(
            Unclear,
            "The message could not be delivered in time and was given up.",
            "Every attempt failed until the time allowed for delivery ran out. The real cause \
             is the error of the earlier attempts.",
            "Look at the last error recorded for this recipient and explain that one.",
        ),
    ),
];
