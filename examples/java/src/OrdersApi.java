// An API server that accepts wxoidc access tokens, with the JDK 17 and
// Jackson only: each bearer token is checked by RFC 7662 introspection at
// the provider, and errors are RFC 6750's.
//
// Why introspection and not offline JWT verification: the JOSE libraries
// Java developers use (Nimbus JOSE+JWT, jose4j, jjwt) are not packaged by
// Debian, and this example is built from Debian packages only (no Maven
// Central). Verifying JWS by hand would be the wrong thing to copy. With a
// JOSE library, verify offline as the Go, Express and Flask examples do.
// Introspection also sees revocation at once, and works with opaque tokens.
//
//   javac -cp /usr/share/java/jackson-databind.jar:/usr/share/java/jackson-core.jar -d build src/OrdersApi.java
//   WXOIDC_ISSUER=http://127.0.0.1:8080 API_AUDIENCE=orders-api \
//   INTROSPECTION_CLIENT_ID=orders-api INTROSPECTION_CLIENT_SECRET=… PORT=8004 \
//   java -cp build:/usr/share/java/jackson-databind.jar:/usr/share/java/jackson-core.jar:/usr/share/java/jackson-annotations.jar OrdersApi
//
// The API is registered at wxoidc as a confidential client whose client_id
// is the audience the Mini Program asks for (wxoidc shows a client only
// tokens issued to it or naming it in their audience). A token is accepted
// only when introspection says it is active, it is an access token
// (token_type Bearer: not a refresh token; ID tokens are never active), iss
// is the issuer, aud includes this API, exp is in the future, and for
// /api/orders it has the scope orders:read.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class OrdersApi {
    private static final Logger LOG = Logger.getLogger("orders-api");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern BEARER = Pattern.compile("^Bearer ([A-Za-z0-9\\-._~+/]+=*)$", Pattern.CASE_INSENSITIVE);

    /** A verified access token. */
    record AccessToken(String subject, String clientId, List<String> scopes) {}

    /** Why a token was refused: HTTP status and RFC 6750 error. */
    static final class Refusal extends Exception {
        private static final long serialVersionUID = 1L;
        final int status;
        final String error;

        Refusal(int status, String error, String reason) {
            super(reason);
            this.status = status;
            this.error = error;
        }
    }

    /** Checks access tokens for one API (audience) by introspection. */
    static final class Introspector {
        private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        private final String issuer;
        private final String audience;
        private final URI endpoint;
        private final String authorization;

        Introspector(String issuer, String audience, String clientId, String clientSecret) throws IOException, InterruptedException {
            this.issuer = issuer;
            this.audience = audience;
            // client_secret_basic: form-encode id and secret, then Base64 (RFC 6749 section 2.3.1).
            this.authorization = "Basic " + Base64.getEncoder().encodeToString(
                    (form(clientId) + ":" + form(clientSecret)).getBytes(StandardCharsets.UTF_8));
            // The introspection endpoint, from discovery.
            HttpResponse<String> res = http.send(HttpRequest.newBuilder(URI.create(issuer + "/.well-known/openid-configuration"))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
            JsonNode discovery = JSON.readTree(res.body());
            if (res.statusCode() != 200 || !issuer.equals(discovery.path("issuer").asText())) {
                throw new IOException("discovery at " + issuer + " answered " + res.statusCode() + " for another issuer");
            }
            this.endpoint = URI.create(discovery.path("introspection_endpoint").asText());
        }

        AccessToken verify(String token) throws Refusal {
            JsonNode t;
            try {
                HttpResponse<String> res = http.send(HttpRequest.newBuilder(endpoint)
                        .timeout(Duration.ofSeconds(5))
                        .header("Authorization", authorization)
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .header("Accept", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("token=" + form(token) + "&token_type_hint=access_token"))
                        .build(), HttpResponse.BodyHandlers.ofString());
                if (res.statusCode() != 200) {
                    throw new IOException("introspection answered " + res.statusCode());
                }
                t = JSON.readTree(res.body());
            } catch (IOException e) {
                LOG.warning("introspection failed: " + e.getMessage());
                throw new Refusal(503, "temporarily_unavailable", e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Refusal(503, "temporarily_unavailable", "interrupted");
            }
            if (!t.path("active").asBoolean(false)) {
                throw new Refusal(401, "invalid_token", "inactive (unknown, expired, revoked, not an access token, or not for this API)");
            }
            if (!"bearer".equalsIgnoreCase(t.path("token_type").asText())) {
                throw new Refusal(401, "invalid_token", "not an access token: token_type " + t.path("token_type").asText());
            }
            if (!issuer.equals(t.path("iss").asText())) {
                throw new Refusal(401, "invalid_token", "issuer " + t.path("iss").asText());
            }
            JsonNode aud = t.path("aud");
            boolean forUs = aud.isTextual() ? audience.equals(aud.asText()) : false;
            for (JsonNode a : aud) {
                forUs |= audience.equals(a.asText());
            }
            if (!forUs) {
                throw new Refusal(401, "invalid_token", "audience " + aud);
            }
            if (t.path("exp").asLong(0) <= Instant.now().getEpochSecond()) {
                throw new Refusal(401, "invalid_token", "expired");
            }
            List<String> scopes = Arrays.asList(t.path("scope").asText("").split(" "));
            return new AccessToken(t.path("sub").asText(), t.path("client_id").asText(), scopes);
        }
    }

    private static String form(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    /** Writes an RFC 6750 section 3 error: WWW-Authenticate and a JSON body. */
    private static void challenge(HttpExchange ex, int status, String error, String description, String scope) throws IOException {
        StringBuilder c = new StringBuilder("Bearer realm=\"orders-api\"");
        Map<String, String> body = new LinkedHashMap<>();
        if (error != null) {
            c.append(", error=\"").append(error).append("\", error_description=\"").append(description).append('"');
            body.put("error", error);
            body.put("error_description", description);
        }
        if (scope != null) {
            c.append(", scope=\"").append(scope).append('"');
        }
        if (status != 503) {
            ex.getResponseHeaders().set("WWW-Authenticate", c.toString());
        }
        writeJSON(ex, status, body);
    }

    private static void writeJSON(HttpExchange ex, int status, Object body) throws IOException {
        byte[] b = JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.getResponseHeaders().set("Cache-Control", "no-store");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    /** GET /api/orders: needs an access token with orders:read. */
    private static void orders(HttpExchange ex, Introspector introspector) throws IOException {
        try (ex) {
            if (!"/api/orders".equals(ex.getRequestURI().getPath())) {
                writeJSON(ex, 404, Map.of());
                return;
            }
            if (!"GET".equals(ex.getRequestMethod())) {
                ex.getResponseHeaders().set("Allow", "GET");
                writeJSON(ex, 405, Map.of());
                return;
            }
            List<String> headers = ex.getRequestHeaders().get("Authorization");
            if (headers == null || headers.isEmpty()) {
                challenge(ex, 401, null, null, null);
                return;
            }
            Matcher m = BEARER.matcher(headers.get(0));
            if (headers.size() > 1 || !m.matches()) {
                challenge(ex, 400, "invalid_request", "Send one Authorization: Bearer <token> header.", null);
                return;
            }
            AccessToken token;
            try {
                token = introspector.verify(m.group(1));
            } catch (Refusal r) {
                LOG.warning("token refused: " + r.getMessage()); // the reason; never the token
                String description = r.status == 503 ? "The token could not be checked; try again." : "The access token is invalid or expired.";
                challenge(ex, r.status, r.error, description, null);
                return;
            }
            if (!token.scopes().contains("orders:read")) {
                challenge(ex, 403, "insufficient_scope", "The access token lacks the scope orders:read.", "orders:read");
                return;
            }
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("sub", token.subject());
            body.put("client_id", token.clientId());
            body.put("orders", List.of());
            writeJSON(ex, 200, body);
        }
    }

    private static String env(String key, String def) {
        String v = System.getenv(key);
        return v == null || v.isEmpty() ? def : v;
    }

    public static void main(String[] args) throws Exception {
        String issuer = env("WXOIDC_ISSUER", "http://127.0.0.1:8080").replaceAll("/+$", "");
        String audience = env("API_AUDIENCE", "orders-api");
        String clientSecret = env("INTROSPECTION_CLIENT_SECRET", null);
        if (clientSecret == null) {
            System.err.println("orders-api: set INTROSPECTION_CLIENT_SECRET (and INTROSPECTION_CLIENT_ID) to the API's client credentials at wxoidc");
            System.exit(2);
        }
        Introspector introspector = new Introspector(issuer, audience, env("INTROSPECTION_CLIENT_ID", audience), clientSecret);

        String host = env("HOST", "127.0.0.1");
        int port = Integer.parseInt(env("PORT", "8004"));
        HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 0);
        server.createContext("/api/orders", ex -> orders(ex, introspector));
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.start();
        LOG.info("orders API on http://" + host + ":" + port + " (issuer " + issuer + ")");
    }
}
