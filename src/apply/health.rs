//! The built-in health check: a TLS handshake with the cell's server.
//! (STUB: the pki helper implements it.)
