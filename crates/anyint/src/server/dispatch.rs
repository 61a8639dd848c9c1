//! The service each connection runs. A hot route ([`HotRoute`]: the `POST`s every model
//! request takes) goes straight to its handler through the edge ([`observe::hot`]); every
//! other request goes to the router, with its connection as an extension, where the edge runs
//! as the router's layer. The router's own work on a request (its path match, a clone of the
//! boxed route service, a boxed future at each layer, a copy of the header map for the
//! handler) measured about 6,000 instructions (callgrind), 7% of a passthrough request's.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::serve::IncomingStream;
use tower::Service;

use super::conn::{CappedListener, Peer};
use super::observe;
use crate::families::HotRoute;
use crate::state::SharedState;

/// Makes each accepted connection's service.
#[derive(Clone)]
pub(crate) struct App {
    router: Router,
    state: SharedState,
}

impl App {
    pub(crate) fn new(router: Router, state: SharedState) -> Self {
        Self { router, state }
    }
}

impl Service<IncomingStream<'_, CappedListener>> for App {
    type Response = ConnService;
    type Error = Infallible;
    type Future = Ready<Result<ConnService, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, CappedListener>) -> Self::Future {
        ready(Ok(ConnService {
            router: self.router.clone(),
            state: self.state.clone(),
            peer: Peer::connect_info(stream),
        }))
    }
}

/// One connection's service.
#[derive(Clone)]
pub(crate) struct ConnService {
    router: Router,
    state: SharedState,
    peer: Peer,
}

impl Service<Request> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        if let Some(hot) = HotRoute::find(req.method(), req.uri().path()) {
            let (state, peer) = (self.state.clone(), self.peer.clone());
            return Box::pin(async move { Ok(observe::hot(state, req, peer, hot).await) });
        }
        req.extensions_mut().insert(ConnectInfo(self.peer.clone()));
        Box::pin(self.router.call(req))
    }
}
