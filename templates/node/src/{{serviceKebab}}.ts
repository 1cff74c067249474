/**
 * The {{obj}} servant: implements the `{{service}}` service of proto/{{service}}.proto.
 * The base class {{service}}Servant is generated into src/gen by `npm run gen`.
 */
import type { DeepPartial, ServerContext } from "sgridnext";
import { {{service}}Servant } from "./gen/{{service}}.sgrid";
import type { SayHelloReply, SayHelloRequest } from "./gen/{{service}}";

export class {{service}} extends {{service}}Servant {
  /** `greeting` is read on every call, so a config change takes effect without a restart. */
  constructor(private readonly greeting: () => string = () => "Hello") {
    super();
  }

  async sayHello(request: SayHelloRequest, _ctx: ServerContext): Promise<DeepPartial<SayHelloReply>> {
    return { message: `${this.greeting()}, ${request.name || "stranger"}` };
  }
}
