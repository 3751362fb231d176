//! A minimal DNS stub for `medid resolve --server udp://…`: one TXT query for the
//! identifier's name under the node's zone, over UDP, again over TCP when truncated.

#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use anyhow::{Context, bail};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use medid_registry::dnsname::identifier_name;
use medid_registry::id::Identifier;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Resolves `id` at the DNS server `address` (`HOST:PORT`) under `zone` and prints
/// its TXT records.
pub(crate) fn resolve(id: &Identifier, address: &str, zone: &str) -> anyhow::Result<()> {
    let name = format!("{}.{}.", identifier_name(id), zone.trim_end_matches('.'));
    let name = Name::from_ascii(&name).with_context(|| format!("`{name}` is not a DNS name"))?;
    let mut query = Message::query();
    query.metadata.id = rand::random();
    query.metadata.recursion_desired = false;
    query.add_query(Query::query(name.clone(), RecordType::TXT));
    let bytes = query.to_vec().context("cannot encode the query")?;
    let server = address
        .to_socket_addrs()
        .with_context(|| format!("`{address}` is not HOST:PORT"))?
        .next()
        .with_context(|| format!("`{address}` resolves to no address"))?;

    let socket = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.send_to(&bytes, server)?;
    let mut buffer = vec![0u8; 65_535];
    let answer = loop {
        let (n, from) = socket
            .recv_from(&mut buffer)
            .with_context(|| format!("no answer from {server} over UDP"))?;
        if from != server {
            continue;
        }
        let answer = Message::from_vec(&buffer[..n]).context("the answer is not a DNS message")?;
        if answer.metadata.id == query.metadata.id {
            break answer;
        }
    };
    let answer = if answer.metadata.truncation {
        let mut stream = TcpStream::connect_timeout(&server, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        let length = u16::try_from(bytes.len()).context("query too long")?;
        stream.write_all(&length.to_be_bytes())?;
        stream.write_all(&bytes)?;
        let mut length = [0u8; 2];
        stream.read_exact(&mut length)?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut reply)?;
        Message::from_vec(&reply).context("the TCP answer is not a DNS message")?
    } else {
        answer
    };
    match answer.metadata.response_code {
        ResponseCode::NoError if answer.answers.is_empty() => {
            bail!("{id} ({name}): no TXT records")
        }
        ResponseCode::NoError => {
            println!("; {id} = {name}");
            for record in &answer.answers {
                println!("{record}");
            }
            Ok(())
        }
        ResponseCode::NXDomain => bail!("{id} ({name}): NXDOMAIN, not registered"),
        code => bail!("{id} ({name}): the server answered {code}"),
    }
}
