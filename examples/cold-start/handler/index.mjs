// The handler of the reference experiment: the same code runs as a default Lambda and on
// Lambda Managed Instances. Plain ESM JavaScript, so no bundler or build step is needed.
//
// `coldStart` is module state: true only for the first invoke an execution environment serves.
// It is logged Powertools-style (`cold_start`), so `lmi test` can read it from the log tail.
let coldStart = true;

export const handler = async (event) => {
  const wasCold = coldStart;
  coldStart = false;
  console.log(JSON.stringify({ level: "INFO", message: "invoked", cold_start: wasCold }));
  return {
    statusCode: 200,
    body: JSON.stringify({ cold_start: wasCold, echo: event ?? null }),
  };
};
