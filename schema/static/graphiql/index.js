// Safety Net's GraphiQL page: every asset is served by the service itself (no CDN), so it works
// on an offline deployment. Headers are typed in the Headers tab and never stored.
(function () {
  var url = window.location.origin + "/graphql";
  var fetcher = GraphiQL.createFetcher({
    url: url,
    subscriptionUrl: url.replace(/^http/, "ws"),
  });
  var headers = JSON.stringify(
    { Authorization: "Bearer <token from `safety-net token` or /auth/login>",
      "Safety-Net-Purpose": "protection" }, null, 2);
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: headers,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: "headers",
    }),
  );
})();
