//! `bare-echo`: the benchmark baseline. A bare actix-web server doing what
//! the echo stage does (answer `/ping`, echo `/invocations` with its
//! Content-Type) with nothing else: no workers, no limits, no logging. The
//! benchmarks compare `modelstage serve` against it in the same run.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

async fn invocations(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        response.insert_header((CONTENT_TYPE, ct.clone()));
    }
    response.body(body)
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    actix_web::rt::System::new().block_on(
        HttpServer::new(|| {
            App::new()
                .route("/ping", web::get().to(HttpResponse::Ok))
                .route("/invocations", web::post().to(invocations))
        })
        .workers(threads)
        .bind(("0.0.0.0", port))?
        .run(),
    )
}
