{# Included in the script of devhub's pages: a call to the hub's REST API with the browser's session
   and the hub's XSRF token; resolves to the JSON answer (null for 204), rejects with its message. #}
function devhubApi(method, url, body) {
  var options = {
    method: method,
    credentials: "same-origin",
    headers: { "X-XSRFToken": window.jhdata.xsrf_token, "Accept": "application/json" },
  };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  return fetch(url, options).then(function (response) {
    if (response.status === 204) return null;
    return response.json().catch(function () { return {}; }).then(function (data) {
      if (!response.ok) throw new Error(data.message || response.status + " " + response.statusText);
      return data;
    });
  });
}
