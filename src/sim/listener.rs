//! The simulated API server's socket. During an outage it is closed, so new connections are
//! refused as they are by an API server that went away, and it opens again on the same port
//! when the outage ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::Faults;

pub(super) struct OutageListener {
    socket: Option<TcpListener>,
    addr: SocketAddr,
    faults: Arc<Faults>,
}

impl OutageListener {
    pub(super) fn new(socket: TcpListener, faults: Arc<Faults>) -> std::io::Result<Self> {
        Ok(Self {
            addr: socket.local_addr()?,
            socket: Some(socket),
            faults,
        })
    }
}

impl axum::serve::Listener for OutageListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            if let Some(until) = self.faults.down_until() {
                self.socket = None;
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
            let socket = match self.socket.take() {
                Some(s) => s,
                None => match TcpListener::bind(self.addr).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!("simulated API server cannot listen on {} yet: {e}", self.addr);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let accepted = tokio::select! {
                accepted = socket.accept() => Some(accepted),
                () = self.faults.outage_started() => None,
            };
            self.socket = Some(socket);
            match accepted {
                Some(Ok((stream, peer))) => {
                    // As Go servers (the real API server among them) do: small writes such as
                    // watch events go out at once instead of waiting for an ACK.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!("simulated API server: cannot set TCP_NODELAY: {e}");
                    }
                    return (stream, peer);
                }
                Some(Err(e)) => {
                    tracing::debug!("simulated API server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                None => {}
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
