// A hostile test guest in JavaScript (not an example): a validating policy (contract
// kpo:plugin@0.2.0) whose `validate` throws an Error. kpo must report the exception's own
// message, not only that the guest trapped. See ../../hostile/README.md.

export const validator = {
  validate(_pod, _context) {
    throw new Error("the JavaScript policy fell over");
  },
};
