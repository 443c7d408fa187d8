"""`python -m innerloop.lsp`: the language server over stdio."""

from innerloop.lsp.setup import serve_stdio

serve_stdio()
