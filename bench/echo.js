// bench/echo.js - njs handler for the bench upstream (bench/nginx-upstream.conf):
// answers every JSON-RPC request (or batch) with a fixed result and the
// request's own id, as rpcpoold checks that an answer's id is the request's.
function answer(req) {
    var id = req !== null && typeof req === 'object' && 'id' in req ? req.id : null;
    return { jsonrpc: '2.0', id: id, result: '0x1' };
}

function rpc(r) {
    var body;
    try {
        var req = JSON.parse(r.requestText || '');
        body = Array.isArray(req) ? req.map(answer) : answer(req);
    } catch (e) {
        body = { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } };
    }
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify(body));
}

export default { rpc };
