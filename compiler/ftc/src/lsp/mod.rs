//! `ftc lsp`: a language server over stdio (`lsp-server`, `lsp-types`). Each open document is
//! analyzed again, with its imports, on every change (the whole front end takes a few
//! milliseconds on the library's largest file): the checker's diagnostics with their codes and
//! related locations, hover (a value's type with named dims, a declaration's signature and doc
//! comment), go to definition (calls across imports and into the standard library, parameters,
//! `let` bindings, imports), completion (builtins, declarations in scope, `import std.` modules,
//! a callee's parameters), signature help, and formatting (`ftc fmt`'s layout).

mod analysis;
mod complete;
mod navigate;
mod text;
mod transport;

use analysis::Workspace;
use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Completion, Formatting, GotoDefinition, HoverRequest, Request as _, SignatureHelpRequest,
};
use lsp_types::{
    CompletionOptions, HoverProviderCapability, OneOf, ServerCapabilities, SignatureHelpOptions,
    TextDocumentSyncCapability, TextDocumentSyncKind,
};
use std::path::PathBuf;

/// What the server can do, as it tells the client.
fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "(".into(), ",".into()]),
            ..CompletionOptions::default()
        }),
        signature_help_provider: Some(SignatureHelpOptions {
            trigger_characters: Some(vec!["(".into(), ",".into()]),
            ..SignatureHelpOptions::default()
        }),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Serves one client on stdin/stdout until it asks to shut down. `lib`: the standard library
/// directory (`--lib`), else the embedded one (whose files definitions point at copies of).
pub fn serve(lib: Option<PathBuf>) -> Result<(), String> {
    let (connection, threads) = transport::stdio();
    let caps = serde_json::to_value(capabilities()).map_err(|e| e.to_string())?;
    if let Err(e) = connection.initialize(caps) {
        // Say why the input ended, when the transport refused it.
        drop(connection);
        return Err(threads
            .join()
            .err()
            .unwrap_or_else(|| format!("initialize: {e}")));
    }
    let mut workspace = Workspace::new(lib);
    for msg in &connection.receiver {
        match msg {
            Message::Request(req) => {
                if connection
                    .handle_shutdown(&req)
                    .map_err(|e| format!("shutdown: {e}"))?
                {
                    break;
                }
                let resp = respond(&mut workspace, req);
                send(&connection, Message::Response(resp))?;
            }
            Message::Notification(n) => {
                for (uri, diagnostics) in notify(&mut workspace, n) {
                    let params = lsp_types::PublishDiagnosticsParams {
                        uri,
                        diagnostics,
                        version: None,
                    };
                    let n = Notification::new(PublishDiagnostics::METHOD.to_string(), params);
                    send(&connection, Message::Notification(n))?;
                }
            }
            Message::Response(_) => {}
        }
    }
    drop(connection);
    threads.join()
}

fn send(connection: &Connection, msg: Message) -> Result<(), String> {
    connection
        .sender
        .send(msg)
        .map_err(|e| format!("the client went away: {e}"))
}

/// Document changes; returns the diagnostics to publish.
fn notify(
    ws: &mut Workspace,
    n: Notification,
) -> Vec<(lsp_types::Url, Vec<lsp_types::Diagnostic>)> {
    match n.method.as_str() {
        DidOpenTextDocument::METHOD => {
            if let Ok(p) = serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
            {
                return ws.open(p.text_document.uri, p.text_document.text);
            }
        }
        DidChangeTextDocument::METHOD => {
            if let Ok(p) =
                serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
            {
                // Full synchronization: the last change holds the whole text.
                if let Some(change) = p.content_changes.into_iter().last() {
                    return ws.open(p.text_document.uri, change.text);
                }
            }
        }
        DidCloseTextDocument::METHOD => {
            if let Ok(p) = serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
            {
                ws.close(&p.text_document.uri);
                return vec![(p.text_document.uri, Vec::new())];
            }
        }
        _ => {}
    }
    Vec::new()
}

/// Answers a request (an unknown method or malformed parameters get an error response).
fn respond(ws: &mut Workspace, req: Request) -> Response {
    fn answer<R: lsp_types::request::Request>(
        id: RequestId,
        params: serde_json::Value,
        handle: impl FnOnce(R::Params) -> R::Result,
    ) -> Response {
        match serde_json::from_value::<R::Params>(params) {
            Ok(p) => Response::new_ok(id, handle(p)),
            Err(e) => Response::new_err(
                id,
                lsp_server::ErrorCode::InvalidParams as i32,
                e.to_string(),
            ),
        }
    }
    let Request { id, method, params } = req;
    match method.as_str() {
        HoverRequest::METHOD => answer::<HoverRequest>(id, params, |p| {
            let at = p.text_document_position_params;
            navigate::hover(ws, &at.text_document.uri, at.position)
        }),
        GotoDefinition::METHOD => answer::<GotoDefinition>(id, params, |p| {
            let at = p.text_document_position_params;
            navigate::definition(ws, &at.text_document.uri, at.position)
                .map(lsp_types::GotoDefinitionResponse::Scalar)
        }),
        Completion::METHOD => answer::<Completion>(id, params, |p| {
            let at = p.text_document_position;
            complete::completion(ws, &at.text_document.uri, at.position)
                .map(lsp_types::CompletionResponse::Array)
        }),
        SignatureHelpRequest::METHOD => answer::<SignatureHelpRequest>(id, params, |p| {
            let at = p.text_document_position_params;
            complete::signature_help(ws, &at.text_document.uri, at.position)
        }),
        Formatting::METHOD => answer::<Formatting>(id, params, |p| {
            let doc = ws.doc(&p.text_document.uri)?;
            let formatted = ftl_syntax::pretty::format_source(doc.text).ok()?;
            // One edit replacing the whole text (none when it is formatted already); a text
            // that does not parse is left alone, its errors already published.
            let whole = text::range(doc.text, 0, doc.text.len());
            Some(if formatted == doc.text {
                Vec::new()
            } else {
                vec![lsp_types::TextEdit::new(whole, formatted)]
            })
        }),
        _ => Response::new_err(
            id,
            lsp_server::ErrorCode::MethodNotFound as i32,
            format!("`{method}` is not supported"),
        ),
    }
}
