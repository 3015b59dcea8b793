//! A TCP proxy in front of a server, which a test cuts and restores: the network between a
//! client and its server failing, while both keep running.

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Forwards both ways.
    Up,
    /// Closes every connection, open or new (a peer that went away).
    Cut,
    /// Closes every open connection; holds new ones open without answering (a firewall that
    /// drops packets): the client finds out only by its timeouts.
    Blackholed,
    /// Keeps open connections; refuses new ones (a server at its client limit).
    RefusingNew,
    /// Closes every connection and stops listening: connecting is refused (a server that is
    /// down).
    Down,
}

/// A proxy on a free port of 127.0.0.1 to `upstream` on 127.0.0.1. Dropped, it closes every
/// connection.
pub struct Proxy {
    port: u16,
    /// Watched by every connection: changing it closes or holds them.
    link: watch::Sender<Link>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (link, watched) = watch::channel(Link::Up);
        let accepting = tokio::spawn(accept(listener, port, upstream, watched));
        Self {
            port,
            link,
            accepting,
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The proxy as a Redis URL.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `url` (`scheme://[user@]host:port/path`) with its host and port replaced by the
    /// proxy's.
    pub fn in_front_of(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let (user, rest) = rest
            .rsplit_once('@')
            .map_or(("", rest), |(user, rest)| (user, rest));
        let path = rest.find('/').map_or("", |slash| &rest[slash..]);
        let user = if user.is_empty() {
            String::new()
        } else {
            format!("{user}@")
        };
        format!("{scheme}://{user}127.0.0.1:{}{path}", self.port)
    }

    /// Closes every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.link.send_replace(Link::Cut);
    }

    /// Closes every open connection; new ones connect, then hear nothing until
    /// [`Proxy::restore`] closes them.
    pub fn blackhole(&self) {
        self.link.send_replace(Link::Blackholed);
    }

    /// Keeps forwarding on open connections; refuses new ones until [`Proxy::restore`].
    pub fn refuse_new(&self) {
        self.link.send_replace(Link::RefusingNew);
    }

    /// Closes every connection and stops listening until [`Proxy::restore`]: connecting is
    /// refused, as by a server that is down.
    pub fn shut(&self) {
        self.link.send_replace(Link::Down);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.link.send_replace(Link::Up);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, port: u16, upstream: u16, mut link: watch::Receiver<Link>) {
    let mut listener = Some(listener);
    loop {
        let Some(listening) = &listener else {
            // Down: listen again once the link is restored.
            if link.wait_for(|state| *state != Link::Down).await.is_err() {
                return;
            }
            listener = TcpListener::bind(("127.0.0.1", port)).await.ok();
            if listener.is_none() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            continue;
        };
        let forwarded = link.clone();
        tokio::select! {
            accepted = listening.accept() => {
                let Ok((client, _)) = accepted else { return };
                tokio::spawn(forward(client, upstream, forwarded));
            }
            _ = link.wait_for(|state| *state == Link::Down) => listener = None,
        }
    }
}

async fn forward(mut client: TcpStream, upstream: u16, mut link: watch::Receiver<Link>) {
    let state = *link.borrow_and_update();
    match state {
        Link::Up => {}
        Link::Cut | Link::RefusingNew | Link::Down => return,
        Link::Blackholed => {
            // Held open, unanswered, until the link changes (or the proxy is dropped).
            let _ = link.changed().await;
            return;
        }
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    // Small messages both ways: no Nagle delay added by the proxy.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        // First: once the link is down, not one more byte goes through.
        biased;
        _ = link.wait_for(|state| matches!(state, Link::Cut | Link::Blackholed | Link::Down)) => {}
        _ = copy_bidirectional(&mut client, &mut server) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shut_proxy_refuses_connections_until_restored() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy::start(upstream.local_addr().unwrap().port()).await;
        assert!(
            TcpStream::connect(("127.0.0.1", proxy.port()))
                .await
                .is_ok()
        );

        proxy.shut();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let refused = TcpStream::connect(("127.0.0.1", proxy.port())).await;
        assert_eq!(
            refused.map(|_| ()).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionRefused)
        );

        proxy.restore();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            TcpStream::connect(("127.0.0.1", proxy.port()))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn urls_point_at_the_proxy() {
        let proxy = Proxy::start(5432).await;
        let port = proxy.port();
        assert_eq!(
            proxy.in_front_of("postgres://postgres@127.0.0.1:5432/test"),
            format!("postgres://postgres@127.0.0.1:{port}/test")
        );
        assert_eq!(
            proxy.in_front_of("redis://localhost:6379"),
            format!("redis://127.0.0.1:{port}")
        );
    }
}
