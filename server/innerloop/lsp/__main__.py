from innerloop.lsp.server import serve_stdio

serve_stdio()
