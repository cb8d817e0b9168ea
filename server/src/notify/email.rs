//! Email delivery over SMTP, encrypted with STARTTLS as the channel requires, through
//! rustls; a channel may name a private CA its SMTP server's certificate is signed by.

use super::channel::{EmailSettings, StartTls};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("address {address:?}: {source}")]
    Address {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("building the message: {0}")]
    Message(#[source] lettre::error::Error),
    #[error("TLS settings: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
    #[error("SMTP: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
}

fn mailbox(a: &str) -> Result<Mailbox, EmailError> {
    a.parse().map_err(|source| EmailError::Address {
        address: a.to_owned(),
        source,
    })
}

/// The message: plain text, from and to as the channel says.
pub fn message(
    settings: &EmailSettings,
    subject: &str,
    body: String,
    delivery_id: &str,
) -> Result<Message, EmailError> {
    let mut b = Message::builder()
        .from(mailbox(&settings.from)?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &settings.to {
        b = b.to(mailbox(to)?);
    }
    // A stable Message-ID per delivery: a mail system that sees a retry can drop it.
    b = b.message_id(Some(format!(
        "<{}@ispvm>",
        delivery_id.replace([':', ' '], ".")
    )));
    b.body(body).map_err(EmailError::Message)
}

fn transport(
    settings: &EmailSettings,
    password: Option<&str>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailError> {
    let tls = if settings.starttls == StartTls::None {
        Tls::None
    } else {
        let mut params = TlsParameters::builder(settings.smtp_host.clone());
        if let Some(pem) = &settings.tls_ca_pem {
            params = params.add_root_certificate(
                Certificate::from_pem(pem.as_bytes()).map_err(EmailError::Tls)?,
            );
        }
        let params = params.build_rustls().map_err(EmailError::Tls)?;
        match settings.starttls {
            StartTls::Opportunistic => Tls::Opportunistic(params),
            _ => Tls::Required(params),
        }
    };
    let mut b =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.smtp_host.as_str())
            .port(settings.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(settings.timeout_ms)));
    if let (false, Some(p)) = (settings.username.is_empty(), password) {
        b = b.credentials(Credentials::new(settings.username.clone(), p.to_owned()));
    }
    Ok(b.build())
}

/// Sends one message; the SMTP server accepting it is success.
pub async fn send(
    settings: &EmailSettings,
    password: Option<&str>,
    subject: &str,
    body: String,
    delivery_id: &str,
) -> Result<(), EmailError> {
    let msg = message(settings, subject, body, delivery_id)?;
    let t = transport(settings, password)?;
    t.send(msg).await.map_err(EmailError::Smtp)?;
    Ok(())
}
