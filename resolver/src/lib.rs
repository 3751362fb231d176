//! The resolver: DNS and HTTP front ends, hierarchy client and answer cache.
