"""Debug adapter: a proxy in front of debugpy's own adapter.

Public API: `start_dap_server` (TCP, inside the language server), `run_stdio` / `serve_stdio`
(`innerloop dap`), and the controller protocol in `innerloop.dap.controller`.
"""
