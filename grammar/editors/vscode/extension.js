// Starts `ftc lsp` for .ftl files: diagnostics as you type, hover, go to definition,
// completion and signature help come from the server (compiler/ftc/src/lsp/).
const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration('ftl');
  const command = config.get('server.path') || 'ftc';
  const lib = config.get('server.lib');
  const args = ['lsp'].concat(lib ? ['--lib', lib] : []);
  client = new LanguageClient(
    'ftl',
    'FTL language server',
    { command, args },
    { documentSelector: [{ scheme: 'file', language: 'ftl' }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
