//! The service each connection runs. A hot route ([`HotRoute`]: the `POST`s every model
//! request takes) goes straight to its handler through the edge ([`observe::hot`]); every
//! other request goes to the router, with its connection as an extension, where the edge runs
//! as the router's layer. The router's own work on a request (its path match, a clone of the
//! boxed route service, a boxed future at each layer, a copy of the header map for the
//! handler) measured about 6,000 instructions (callgrind), 7% of a passthrough request's.

use std::convert::Infallible;
use std::pin::Pin;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use tower::Service as _;

use super::conn::Peer;
use super::observe;
use crate::families::HotRoute;
use crate::state::SharedState;

/// What every connection of a worker is served with.
#[derive(Clone)]
pub(crate) struct App {
    router: Router,
    state: SharedState,
}

impl App {
    pub(crate) fn new(router: Router, state: SharedState) -> Self {
        Self { router, state }
    }

    /// The service of the connection `peer`.
    pub(crate) fn conn(&self, peer: Peer) -> ConnService {
        ConnService {
            router: self.router.clone(),
            state: self.state.clone(),
            peer,
        }
    }
}

/// One connection's service.
pub(crate) struct ConnService {
    router: Router,
    state: SharedState,
    peer: Peer,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let mut req = req.map(Body::new);
        if let Some(hot) = HotRoute::find(req.method(), req.uri().path()) {
            let (state, peer) = (self.state.clone(), self.peer.clone());
            return Box::pin(async move { Ok(observe::hot(state, req, peer, hot).await) });
        }
        req.extensions_mut().insert(ConnectInfo(self.peer.clone()));
        // The router is always ready; a clone is an `Arc`'s.
        Box::pin(self.router.clone().call(req))
    }
}
