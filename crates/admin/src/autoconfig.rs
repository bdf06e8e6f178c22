//! Client configuration documents: Thunderbird's autoconfig (clientConfig version 1.1, the
//! format Thunderbird, K-9/Thunderbird for Android, Evolution and others read) and Outlook's
//! Autodiscover POX response (schema `outlook/responseschema/2006a`). Both say: these servers,
//! these ports, implicit TLS preferred (RFC 8314 §5.1), the full address as user name, the
//! password sent inside TLS.

use facteur_config::Config;

/// How one service is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    /// Implicit TLS (993, 995, 465) rather than STARTTLS.
    pub implicit_tls: bool,
}

/// What the documents announce, drawn from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub server: String,
    pub display_name: String,
    pub imap: Vec<Endpoint>,
    pub pop3: Vec<Endpoint>,
    pub smtp: Vec<Endpoint>,
}

impl Settings {
    /// The enabled roles' first ports, implicit TLS first.
    pub fn from_config(config: &Config) -> Settings {
        let first = |addrs: &[facteur_config::ListenAddr], implicit_tls| {
            addrs.first().map(|a| Endpoint {
                port: a.0.port(),
                implicit_tls,
            })
        };
        let l = &config.listen;
        let server = if config.autoconfig.server.is_empty() {
            config.hostname.clone()
        } else {
            config.autoconfig.server.clone()
        };
        Settings {
            server,
            display_name: config.autoconfig.display_name.clone(),
            imap: [first(&l.imaps, true), first(&l.imap, false)]
                .into_iter()
                .flatten()
                .collect(),
            pop3: [first(&l.pop3s, true), first(&l.pop3, false)]
                .into_iter()
                .flatten()
                .collect(),
            smtp: [first(&l.submissions, true), first(&l.submission, false)]
                .into_iter()
                .flatten()
                .collect(),
        }
    }

    fn display_name<'a>(&'a self, domain: &'a str) -> &'a str {
        if self.display_name.is_empty() {
            domain
        } else {
            &self.display_name
        }
    }
}

/// Thunderbird's `config-v1.1.xml` for `domain`.
pub fn thunderbird(s: &Settings, domain: &str) -> String {
    let host = escape(&s.server);
    let server = |kind: &str, tag: &str, e: &Endpoint| {
        format!(
            "    <{tag} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      <port>{}</port>\n      \
             <socketType>{}</socketType>\n      <authentication>password-cleartext</authentication>\n      \
             <username>%EMAILADDRESS%</username>\n    </{tag}>\n",
            e.port,
            if e.implicit_tls { "SSL" } else { "STARTTLS" }
        )
    };
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n",
    );
    let d = escape(domain);
    let name = escape(s.display_name(domain));
    out.push_str(&format!(
        "  <emailProvider id=\"{d}\">\n    <domain>{d}</domain>\n    <displayName>{name}</displayName>\n    \
         <displayShortName>{name}</displayShortName>\n"
    ));
    for e in &s.imap {
        out.push_str(&server("imap", "incomingServer", e));
    }
    for e in &s.pop3 {
        out.push_str(&server("pop3", "incomingServer", e));
    }
    for e in &s.smtp {
        out.push_str(&server("smtp", "outgoingServer", e));
    }
    out.push_str("  </emailProvider>\n</clientConfig>\n");
    out
}

/// Outlook's Autodiscover POX answer for `address`.
pub fn autodiscover(s: &Settings, address: &str) -> String {
    let host = escape(&s.server);
    let login = escape(address);
    let protocol = |kind: &str, e: &Endpoint| {
        // `Encryption` says which TLS (Outlook 2010+); `SSL` alone is read by older clients.
        format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{host}</Server>\n        \
             <Port>{}</Port>\n        <DomainRequired>off</DomainRequired>\n        <LoginName>{login}</LoginName>\n        \
             <SPA>off</SPA>\n        <SSL>on</SSL>\n        <Encryption>{}</Encryption>\n        \
             <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
            e.port,
            if e.implicit_tls { "SSL" } else { "TLS" }
        )
    };
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
    );
    if let Some(e) = s.imap.first() {
        out.push_str(&protocol("IMAP", e));
    }
    if let Some(e) = s.pop3.first() {
        out.push_str(&protocol("POP3", e));
    }
    if let Some(e) = s.smtp.first() {
        out.push_str(&protocol("SMTP", e));
    }
    out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    out
}

/// The address inside an Autodiscover request's `<EMailAddress>`.
pub fn requested_address(body: &str) -> Option<String> {
    let start = body.find("<EMailAddress>")? + "<EMailAddress>".len();
    let end = body[start..].find("</EMailAddress>")? + start;
    let address = body[start..end].trim();
    (!address.is_empty() && address.len() <= 320).then(|| address.to_string())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_config(&Config {
            hostname: "mx.example.com".into(),
            ..Config::default()
        })
    }

    #[test]
    fn thunderbird_document_lists_implicit_tls_first() {
        let xml = thunderbird(&settings(), "example.org");
        assert!(xml.contains("<emailProvider id=\"example.org\">"));
        let imap993 = xml.find("<port>993</port>").unwrap();
        let imap143 = xml.find("<port>143</port>").unwrap();
        assert!(imap993 < imap143);
        assert!(xml.contains("<outgoingServer type=\"smtp\">\n      <hostname>mx.example.com</hostname>\n      <port>465</port>\n      <socketType>SSL</socketType>"));
        assert!(xml.contains("<port>587</port>\n      <socketType>STARTTLS</socketType>"));
        assert_eq!(
            xml.matches("<username>%EMAILADDRESS%</username>").count(),
            6
        );
    }

    #[test]
    fn autodiscover_answers_with_the_address_as_login() {
        let req = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>bob@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>";
        let address = requested_address(req).unwrap();
        assert_eq!(address, "bob@example.org");
        let xml = autodiscover(&settings(), &address);
        assert!(xml.contains(
            "<Type>IMAP</Type>\n        <Server>mx.example.com</Server>\n        <Port>993</Port>"
        ));
        assert!(xml.contains(
            "<Type>SMTP</Type>\n        <Server>mx.example.com</Server>\n        <Port>465</Port>"
        ));
        assert!(xml.contains("<LoginName>bob@example.org</LoginName>"));
        assert_eq!(escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
